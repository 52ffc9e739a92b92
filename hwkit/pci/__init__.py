"""PCI family: discovery, nubs, config space, I/O over VFIO."""
