"""USB family: discovery, nubs, descriptors, I/O over libusb."""
