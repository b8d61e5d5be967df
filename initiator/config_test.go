package initiator

import (
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	tpid := func(id, ioc uint64) (b [16]byte) {
		for i := range 8 {
			b[i] = byte(id >> (56 - 8*i))
			b[8+i] = byte(ioc >> (56 - 8*i))
		}
		return b
	}
	for _, tc := range []struct {
		name, s  string
		addr     string
		tpid     [16]byte
		iext     byte // last byte of initiator_ext
		queue    int
		channels int
		sg       int
		maxIU    int
	}{
		{name: "RDMA/CM (ib_srp docs)", s: "id_ext=200100e08b000000,ioc_guid=0002c90300a0b1c2,dest=192.168.1.10:5000",
			addr: "192.168.1.10:5000", tpid: tpid(0x200100e08b000000, 0x0002c90300a0b1c2)},
		{name: "IB/CM as ib_srpt prints it", s: "id_ext=0002c90300a0b1c2,ioc_guid=0002c90300a0b1c2,pkey=ffff,service_id=0002c90300a0b1c2,dgid=fe800000000000000002c90300a0b1c3",
			addr: "0002c90300a0b1c2", tpid: tpid(0x0002c90300a0b1c2, 0x0002c90300a0b1c2)},
		{name: "echo newline, 0x, options", s: "id_ext=0x1,ioc_guid=0X2,dest=[fe80::1%eth0]:5000,queue_size=128,ch_count=4,cmd_sg_entries=255,max_it_iu_size=4096,initiator_ext=7\n",
			addr: "[fe80::1%eth0]:5000", tpid: tpid(1, 2), iext: 7, queue: 128, channels: 4, sg: 255, maxIU: 4096},
		{name: "ignored keys", s: "id_ext=1,ioc_guid=2,dest=10.0.0.1:1,max_sect=1024,max_cmd_per_lun=62,target_can_queue=64,io_class=ff00,allow_ext_sg=1,sg_tablesize=128,comp_vector=3,tl_retry_count=7,src=10.0.0.2",
			addr: "10.0.0.1:1", tpid: tpid(1, 2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, addr, err := ParseTarget(tc.s)
			if err != nil {
				t.Fatal(err)
			}
			if addr != tc.addr || cfg.TargetPortID != tc.tpid || cfg.InitiatorPortID[7] != tc.iext ||
				cfg.QueueSize != tc.queue || cfg.Channels != tc.channels || cfg.CmdSGEntries != tc.sg || cfg.MaxITIUSize != tc.maxIU {
				t.Errorf("got addr %q cfg %+v", addr, cfg)
			}
		})
	}
	for _, tc := range []struct{ name, s, want string }{
		{"unknown key", "id_ext=1,ioc_guid=2,dest=10.0.0.1:1,bogus=1", "unknown key"},
		{"bad hex", "id_ext=xyz,ioc_guid=2,dest=10.0.0.1:1", "id_ext"},
		{"hex too long", "id_ext=11112222333344445,ioc_guid=2,dest=10.0.0.1:1", "id_ext"},
		{"negative hex", "id_ext=-1,ioc_guid=2,dest=10.0.0.1:1", "id_ext"},
		{"no id_ext", "ioc_guid=2,dest=10.0.0.1:1", "required"},
		{"no address", "id_ext=1,ioc_guid=2", "dest"},
		{"IB without pkey", "id_ext=1,ioc_guid=2,dgid=fe800000000000000002c90300a0b1c3,service_id=1", "dest"},
		{"short dgid", "id_ext=1,ioc_guid=2,dgid=fe80,pkey=ffff,service_id=1", "dgid"},
		{"dest without port", "id_ext=1,ioc_guid=2,dest=10.0.0.1", "dest"},
		{"no value", "id_ext=1,ioc_guid=2,dest=10.0.0.1:1,queue_size", "key=value"},
		{"queue_size 0", "id_ext=1,ioc_guid=2,dest=10.0.0.1:1,queue_size=0", "queue_size"},
		{"cmd_sg_entries 256", "id_ext=1,ioc_guid=2,dest=10.0.0.1:1,cmd_sg_entries=256", "cmd_sg_entries"},
		{"tl_retry_count 1", "id_ext=1,ioc_guid=2,dest=10.0.0.1:1,tl_retry_count=1", "tl_retry_count"},
		{"pkey too wide", "id_ext=1,ioc_guid=2,dgid=fe800000000000000002c90300a0b1c3,pkey=1ffff,service_id=1", "pkey"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseTarget(tc.s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseTarget(%q) = %v, want an error naming %q", tc.s, err, tc.want)
			}
		})
	}
}

func TestITIULen(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		imm  bool
		want int
	}{
		{Config{}, true, 8260}, // max(48+16+20+12×16 = 276, 68+8192)
		{Config{}, false, 276}, // no immediate data: the indirect table decides
		{Config{CmdSGEntries: 255}, false, 48 + 16 + 20 + 255*16}, // 4164
		{Config{CmdSGEntries: 255}, true, 8260},
		{Config{MaxImmData: 16384}, true, 68 + 16384},
		{Config{MaxITIUSize: 4096}, true, 4096},
		{Config{MaxITIUSize: 10}, true, 64}, // never below a login request
		{Config{ITIULen: 1000}, true, 1000},
	} {
		cfg, err := tc.cfg.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.itIULen(tc.imm); got != tc.want {
			t.Errorf("%+v imm %v: IT IU length %d, want %d", tc.cfg, tc.imm, got, tc.want)
		}
	}
	for _, bad := range []Config{{Channels: -1}, {CmdSGEntries: 256}, {ITIULen: 63}, {QueueSize: -1}, {ResponderResources: 256}} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
