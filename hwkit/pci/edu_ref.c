/*
 * The reference for `hwkit bench pci`: the same edu I/O as hwkit's benchmark, in C,
 * through the same VFIO interface (Documentation/driver-api/vfio.rst), so the figures
 * compare Python against the cheapest user-space path, on the same device, in the
 * same run.
 *
 *   edu_ref BDF IOMMU_GROUP MMIO_ITERATIONS IRQ_ITERATIONS
 *
 * prints one JSON object: read_ns, write_ns (mean per 32-bit access) and irq_us
 * (every interrupt-to-wake-up latency, in microseconds).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define EDU_ID 0x00
#define EDU_LIVENESS 0x04
#define EDU_IRQ_STATUS 0x24
#define EDU_IRQ_RAISE 0x60
#define EDU_IRQ_ACK 0x64

static void die(const char *what)
{
	fprintf(stderr, "edu_ref: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: edu_ref BDF IOMMU_GROUP MMIO_ITERATIONS IRQ_ITERATIONS\n");
		return 2;
	}
	const char *bdf = argv[1];
	long mmio_n = atol(argv[3]), irq_n = atol(argv[4]);
	char path[64];

	int container = open("/dev/vfio/vfio", O_RDWR);
	if (container < 0)
		die("open /dev/vfio/vfio");
	snprintf(path, sizeof(path), "/dev/vfio/%s", argv[2]);
	int group = open(path, O_RDWR);
	if (group < 0)
		die(path);
	struct vfio_group_status status = { .argsz = sizeof(status) };
	if (ioctl(group, VFIO_GROUP_GET_STATUS, &status) || !(status.flags & VFIO_GROUP_FLAGS_VIABLE))
		die("group not viable");
	if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container))
		die("VFIO_GROUP_SET_CONTAINER");
	if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		die("VFIO_SET_IOMMU");
	int device = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (device < 0)
		die("VFIO_GROUP_GET_DEVICE_FD");

	struct vfio_region_info bar = { .argsz = sizeof(bar), .index = VFIO_PCI_BAR0_REGION_INDEX };
	struct vfio_region_info config = { .argsz = sizeof(config), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	if (ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &bar) ||
	    ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &config))
		die("VFIO_DEVICE_GET_REGION_INFO");
	volatile uint32_t *regs = mmap(NULL, bar.size, PROT_READ | PROT_WRITE, MAP_SHARED, device, bar.offset);
	if (regs == MAP_FAILED)
		die("mmap BAR0");
	uint16_t command;
	if (pread(device, &command, 2, config.offset + 4) != 2)
		die("read COMMAND");
	command |= 0x6; /* memory space, bus master (MSI is a memory write) */
	if (pwrite(device, &command, 2, config.offset + 4) != 2)
		die("write COMMAND");

	/* MSI vector 0 to an eventfd */
	int efd = eventfd(0, EFD_CLOEXEC);
	char buf[sizeof(struct vfio_irq_set) + sizeof(int32_t)];
	struct vfio_irq_set *set = (struct vfio_irq_set *)buf;
	set->argsz = sizeof(buf);
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	set->index = VFIO_PCI_MSI_IRQ_INDEX;
	set->start = 0;
	set->count = 1;
	memcpy(set->data, &efd, sizeof(int32_t));
	if (ioctl(device, VFIO_DEVICE_SET_IRQS, set))
		die("VFIO_DEVICE_SET_IRQS");

	if ((regs[EDU_ID / 4] & 0xff) != 0xed) {
		fprintf(stderr, "edu_ref: %s is not an edu device\n", bdf);
		return 1;
	}
	uint32_t sink = 0;
	uint64_t t0 = now_ns();
	for (long i = 0; i < mmio_n; i++)
		sink += regs[EDU_ID / 4];
	uint64_t t1 = now_ns();
	for (long i = 0; i < mmio_n; i++)
		regs[EDU_LIVENESS / 4] = (uint32_t)i;
	uint64_t t2 = now_ns();

	printf("{\"read_ns\": %.1f, \"write_ns\": %.1f, \"sink\": %u, \"irq_us\": [",
	       (double)(t1 - t0) / mmio_n, (double)(t2 - t1) / mmio_n, sink);
	for (long i = 0; i < irq_n; i++) {
		uint64_t count, start = now_ns();
		regs[EDU_IRQ_RAISE / 4] = 1;
		if (read(efd, &count, sizeof(count)) != sizeof(count))
			die("read eventfd");
		uint64_t end = now_ns();
		regs[EDU_IRQ_ACK / 4] = regs[EDU_IRQ_STATUS / 4];
		printf("%s%.1f", i ? ", " : "", (double)(end - start) / 1000.0);
	}
	printf("]}\n");
	return 0;
}
