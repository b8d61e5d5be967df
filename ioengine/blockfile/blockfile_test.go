package blockfile

import (
	"strings"
	"testing"

	"github.com/usrpt/usrpt/internal/sysfs"
	"github.com/usrpt/usrpt/internal/sysfs/sysfstest"
)

// fakeHost is a sysfs tree with a zram disk, a virtio disk with a partition,
// and two NVMe namespaces on a kernel that exposes queue/nowait.
func fakeHost(t *testing.T) sysfs.FS {
	t.Helper()
	root := sysfstest.Tree(t, sysfstest.Spec{Files: sysfstest.FileMap{
		"sys/devices/virtual/block/zram0/uevent":                   "MAJOR=253\nMINOR=0\nDEVNAME=zram0\nDEVTYPE=disk\n",
		"sys/devices/virtual/block/zram0/queue/rotational":         "0\n",
		"sys/devices/virtual/block/zram0/queue/logical_block_size": "4096\n",
		"sys/devices/virtual/block/zram0/queue/discard_max_bytes":  "4096\n",

		"sys/devices/pci0000:00/virtio1/block/vda/uevent":                   "MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n",
		"sys/devices/pci0000:00/virtio1/block/vda/queue/rotational":         "1\n",
		"sys/devices/pci0000:00/virtio1/block/vda/queue/logical_block_size": "512\n",
		"sys/devices/pci0000:00/virtio1/block/vda/queue/discard_max_bytes":  "0\n",
		"sys/devices/pci0000:00/virtio1/block/vda/vda1/uevent":              "MAJOR=254\nMINOR=1\nDEVNAME=vda1\nDEVTYPE=partition\n",
		"sys/devices/pci0000:00/virtio1/block/vda/vda1/partition":           "1\n",

		"sys/devices/pci0000:00/nvme/nvme0/nvme0n1/uevent":           "MAJOR=259\nMINOR=0\nDEVNAME=nvme0n1\nDEVTYPE=disk\n",
		"sys/devices/pci0000:00/nvme/nvme0/nvme0n1/queue/nowait":     "1\n",
		"sys/devices/pci0000:00/nvme/nvme1/nvme1n1/uevent":           "MAJOR=259\nMINOR=1\nDEVNAME=nvme1n1\nDEVTYPE=disk\n",
		"sys/devices/pci0000:00/nvme/nvme1/nvme1n1/queue/nowait":     "0\n",
		"sys/devices/pci0000:00/nvme/nvme1/nvme1n1/queue/rotational": "0\n",
	}})
	sysfstest.WriteSymlinks(t, root, map[string]string{
		"sys/dev/block/253:0": "../../devices/virtual/block/zram0",
		"sys/dev/block/254:0": "../../devices/pci0000:00/virtio1/block/vda",
		"sys/dev/block/254:1": "../../devices/pci0000:00/virtio1/block/vda/vda1",
		"sys/dev/block/259:0": "../../devices/pci0000:00/nvme/nvme0/nvme0n1",
		"sys/dev/block/259:1": "../../devices/pci0000:00/nvme/nvme1/nvme1n1",
		"sys/block/vda":       "../devices/pci0000:00/virtio1/block/vda",
	})
	return sysfs.New(root)
}

func TestReadDevInfo(t *testing.T) {
	sys := fakeHost(t)
	for _, tc := range []struct {
		major, minor uint32
		want         devInfo
		punts        string // "" for none, else a word the reason says
	}{
		{253, 0, devInfo{known: true, name: "zram0", logicalBlock: 4096, discard: true}, "zram"},
		{254, 0, devInfo{known: true, name: "vda", logicalBlock: 512, rotational: true}, ""},
		// A partition reads its disk's queue.
		{254, 1, devInfo{known: true, name: "vda1", logicalBlock: 512, rotational: true}, ""},
		{259, 0, devInfo{known: true, name: "nvme0n1", nowait: "1"}, ""},
		{259, 1, devInfo{known: true, name: "nvme1n1", nowait: "0"}, "nowait"},
		// Unknown to sysfs (tmpfs's anonymous device, a missing tree).
		{0, 42, devInfo{}, ""},
	} {
		got := readDevInfo(sys, tc.major, tc.minor)
		tc.want.major, tc.want.minor = tc.major, tc.minor
		got.queue = ""
		if got != tc.want {
			t.Errorf("%d:%d: got %+v, want %+v", tc.major, tc.minor, got, tc.want)
		}
		punts, why := workerPunts("", got)
		if punts != (tc.punts != "") || !strings.Contains(why, tc.punts) {
			t.Errorf("%d:%d: workerPunts = %v, %q; want a reason with %q", tc.major, tc.minor, punts, why, tc.punts)
		}
	}
}

func TestWorkerPuntsFS(t *testing.T) {
	for _, tc := range []struct {
		fs    string
		punts bool
	}{{"tmpfs", true}, {"ramfs", true}, {"ext4", false}, {"xfs", false}, {"", false}} {
		punts, why := workerPunts(tc.fs, devInfo{})
		if punts != tc.punts || punts && !strings.Contains(why, tc.fs) {
			t.Errorf("%q: %v, %q", tc.fs, punts, why)
		}
	}
}

func TestFSName(t *testing.T) {
	for magic, want := range map[int64]string{
		0xef53:               "ext4",
		0x01021994:           "tmpfs",
		0x58465342:           "xfs",
		0x9fa0:               "proc",
		-0x6edc97c2:          "btrfs", // 0x9123683e as a signed 32-bit f_type
		0x12345678:           "fs-0x12345678",
		int64(int32(-0x100)): "fs-0xffffff00",
	} {
		if got := fsName(magic); got != want {
			t.Errorf("fsName(%#x) = %q, want %q", magic, got, want)
		}
	}
}

func TestKindString(t *testing.T) {
	if Regular.String() != "regular file" || Block.String() != "block device" || Kind(9).String() != "Kind(9)" {
		t.Error(Regular, Block, Kind(9))
	}
}
