package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"os"
	"sort"
)

// GUIDFromMAC makes the EUI-64 of a 48-bit MAC as the kernel makes a port
// GUID for rxe and siw and an IPv6 interface ID (addrconf_ifid_eui48):
// 0xfffe in the middle, and the universal/local bit flipped. The same NIC
// so always gives the same target GUID, and with it the same add_target
// string and LUN serials across restarts.
func GUIDFromMAC(mac net.HardwareAddr) (uint64, error) {
	if len(mac) != 6 {
		return 0, fmt.Errorf("MAC %s: want 6 bytes, have %d", mac, len(mac))
	}
	var b [8]byte
	copy(b[0:3], mac[0:3])
	b[3], b[4] = 0xff, 0xfe
	copy(b[5:8], mac[3:6])
	b[0] ^= 0x02
	return binary.BigEndian.Uint64(b[:]), nil
}

// deriveGUID picks the MAC to derive the target GUID from: the interface
// that holds the first listener's address, or — for the loop transport and
// wildcard addresses, which have no interface of their own — the
// lowest-indexed non-loopback interface with a MAC. Without any, it hashes
// the host name into a locally administered EUI-64 (still stable).
func deriveGUID(listeners []ListenerConfig) (uint64, string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return 0, "", fmt.Errorf("list interfaces: %w", err)
	}
	sort.Slice(ifs, func(i, j int) bool { return ifs[i].Index < ifs[j].Index })
	for _, ln := range listeners {
		if ln.Transport == "loop" {
			continue
		}
		ap, err := ListenAddr(ln.Address)
		if err != nil || ap.Addr().IsUnspecified() {
			continue
		}
		for _, ifc := range ifs {
			addrs, _ := ifc.Addrs()
			for _, a := range addrs {
				if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Unmap() == ap.Addr().Unmap() && len(ifc.HardwareAddr) == 6 {
					g, err := GUIDFromMAC(ifc.HardwareAddr)
					return g, ifc.Name, err
				}
			}
		}
		break
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 || len(ifc.HardwareAddr) != 6 || isZero(ifc.HardwareAddr) {
			continue
		}
		g, err := GUIDFromMAC(ifc.HardwareAddr)
		return g, ifc.Name, err
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return 0, "", errors.New("no interface with a MAC and no host name to derive the target GUID from: set target.guid")
	}
	h := fnv.New64a()
	h.Write([]byte(host))
	var mac [6]byte
	binary.BigEndian.PutUint32(mac[2:], uint32(h.Sum64()))
	mac[0], mac[1] = 0x02, byte(h.Sum64()>>40) // locally administered, so it never equals a real NIC's
	g, err := GUIDFromMAC(mac[:])
	return g, "hostname " + host, err
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
