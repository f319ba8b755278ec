"""An example ganenc plugin: a tiny GAN family ("tinygan"), its encoder and a weights tag."""
