"""Lightning datamodules: CIFAR-10/100 from binaries, ImageFolder, zips or the embedded subset."""
