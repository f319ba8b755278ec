"""``python -m ganenc`` (what ``torchrun -m ganenc`` runs)."""

from ganenc.cli.main import main

main()
