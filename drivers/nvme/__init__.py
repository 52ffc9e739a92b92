"""NVMe driver over VFIO (imported as hwkit.drivers.nvme).

Split by concern, as SPDK's: registers and structures, the controller (enable, disable,
admin queue, identify), queue pairs, and namespace commands.
"""
