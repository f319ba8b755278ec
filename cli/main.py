import click


@click.group()
def cli():
    pass


def main():
    cli()
