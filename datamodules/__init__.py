"""Lightning datamodules: CIFAR-10/100 from binaries, ImageFolder trees, zips, or the embedded subset."""
