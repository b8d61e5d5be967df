package target

import (
	"fmt"
	"slices"

	"github.com/usrpt/usrpt/poller"
	"github.com/usrpt/usrpt/srp"
)

// ChannelInfo describes one channel of a session.
type ChannelInfo struct {
	ID      uint64       `json:"id"`
	Reactor int          `json:"reactor"`
	CPU     int          `json:"cpu"`
	State   string       `json:"state"`
	Credits int          `json:"credits"` // held by the initiator, as the target counts
	ImmData bool         `json:"immediate_data"`
	Stats   ChannelStats `json:"stats"`
}

// SessionInfo describes one I_T nexus.
type SessionInfo struct {
	ID          uint64        `json:"id"`
	InitiatorID string        `json:"initiator_port_id"`
	Peer        string        `json:"peer"`
	ACL         string        `json:"acl"`
	LUNs        []uint16      `json:"luns"`
	Channels    []ChannelInfo `json:"channels"`
}

// Sessions snapshots the logged-in I_T nexuses and their channels. The
// counters are read on each channel's reactor.
func (t *Target) Sessions() []SessionInfo {
	t.mu.Lock()
	var out []SessionInfo
	byRx := map[*reactor][]*ChannelInfo{}
	chOf := map[*ChannelInfo]*channel{}
	for _, nx := range t.nexuses {
		s := SessionInfo{ID: nx.id, InitiatorID: fmt.Sprintf("%032x", nx.iid[:]), Peer: peerString(nx.peer), ACL: nx.acl.Name}
		for _, m := range nx.sn.LUNs() {
			s.LUNs = append(s.LUNs, m.LUN)
		}
		s.Channels = make([]ChannelInfo, len(nx.chans))
		for i, ch := range nx.chans {
			ci := &s.Channels[i]
			ci.ID, ci.Reactor, ci.CPU, ci.ImmData = ch.id, ch.rx.id, ch.rx.pr.CPU(), ch.immOff > 0
			byRx[ch.rx] = append(byRx[ch.rx], ci)
			chOf[ci] = ch
		}
		out = append(out, s)
	}
	t.mu.Unlock()
	for rx, cis := range byRx {
		_ = t.g.Call(rx.id, callTimeout, func(*poller.Reactor) {
			for _, ci := range cis {
				ch := chOf[ci]
				ci.Stats, ci.Credits = ch.stats, ch.credits
				ci.State = [...]string{"live", "closing", "gone"}[ch.state]
			}
		})
	}
	slices.SortFunc(out, func(a, b SessionInfo) int { return int(a.ID) - int(b.ID) })
	return out
}

// Logout ends session id (SessionInfo.ID): every channel gets
// SRP_T_LOGOUT and is drained; the initiator may log in again.
func (t *Target) Logout(id uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, nx := range t.nexuses {
		if nx.id == id {
			t.terminateLocked(nx, srp.LogoutNone)
			return nil
		}
	}
	return fmt.Errorf("target: no session %d", id)
}

// Stats are the target's counters.
type Stats struct {
	Logins     uint64                `json:"logins"`
	Rejects    map[string]uint64     `json:"login_rejects"` // by reason
	Sessions   int                   `json:"sessions"`
	Channels   int                   `json:"channels"`
	Total      ChannelStats          `json:"channels_total"` // live and gone channels together
	LUNs       map[uint16]LUNStats   `json:"luns"`
	Reactors   []poller.ReactorStats `json:"reactors"`
	TMFDropped uint64                `json:"tmf_parts_dropped"`
}

// Stats collects the counters from every reactor.
func (t *Target) Stats() Stats {
	s := Stats{Logins: t.logins.Load(), Rejects: map[string]uint64{}, LUNs: map[uint16]LUNStats{}, TMFDropped: t.tmfDropped.Load()}
	for i := range t.rejects {
		if n := t.rejects[i].Load(); n > 0 {
			name := "other"
			if i < len(t.rejects)-1 {
				name = (srp.RejUnable + srp.RejReason(i)).String()
			}
			s.Rejects[name] = n
		}
	}
	for _, ss := range t.Sessions() {
		s.Sessions++
		s.Channels += len(ss.Channels)
	}
	for _, rx := range t.rs {
		_ = t.g.Call(rx.id, callTimeout, func(*poller.Reactor) {
			// Live and gone channels in one step on the reactor that
			// owns them: one that goes meanwhile is counted once.
			s.Total.add(&rx.gone)
			for _, ch := range rx.chans {
				s.Total.add(&ch.stats)
			}
			for n, l := range rx.lunStats {
				if l.Commands == 0 {
					continue
				}
				a := s.LUNs[uint16(n)]
				a.add(&l)
				s.LUNs[uint16(n)] = a
			}
		})
	}
	s.Reactors, _ = t.g.Stats(callTimeout)
	return s
}
