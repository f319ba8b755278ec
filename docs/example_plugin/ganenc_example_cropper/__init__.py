"""An example ganenc plugin: a cropper whose boxes are fixed fractions of the image."""
