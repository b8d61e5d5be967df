package server

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Changes is what a Reload did, and what it could not do live.
type Changes struct {
	AddedLUNs    []uint16 `json:"added_luns,omitempty"`
	RemovedLUNs  []uint16 `json:"removed_luns,omitempty"`
	ReplacedLUNs []uint16 `json:"replaced_luns,omitempty"` // settings changed: removed and added again
	ResizedLUNs  []uint16 `json:"resized_luns,omitempty"`  // only the size changed, within the engine
	AddedACLs    []string `json:"added_acls,omitempty"`
	RemovedACLs  []string `json:"removed_acls,omitempty"`
	ChangedACLs  []string `json:"changed_acls,omitempty"`
	// NeedRestart names the tables whose changes a running target cannot
	// take (reactor cores, GUID, listeners, limits, control, metrics):
	// they stay as they were until usrpt serve restarts.
	NeedRestart []string `json:"need_restart,omitempty"`
}

// Empty reports whether the reload changed nothing and left nothing for a
// restart.
func (c Changes) Empty() bool {
	return len(c.AddedLUNs)+len(c.RemovedLUNs)+len(c.ReplacedLUNs)+len(c.ResizedLUNs)+
		len(c.AddedACLs)+len(c.RemovedACLs)+len(c.ChangedACLs)+len(c.NeedRestart) == 0
}

func (c Changes) String() string {
	if c.Empty() {
		return "no changes"
	}
	var parts []string
	luns := func(what string, l []uint16) {
		if len(l) > 0 {
			parts = append(parts, fmt.Sprintf("%s LUN %v", what, l))
		}
	}
	acls := func(what string, l []string) {
		if len(l) > 0 {
			parts = append(parts, fmt.Sprintf("%s ACL %v", what, l))
		}
	}
	luns("added", c.AddedLUNs)
	luns("removed", c.RemovedLUNs)
	luns("replaced", c.ReplacedLUNs)
	luns("resized", c.ResizedLUNs)
	acls("added", c.AddedACLs)
	acls("removed", c.RemovedACLs)
	acls("changed", c.ChangedACLs)
	if len(c.NeedRestart) > 0 {
		parts = append(parts, fmt.Sprintf("needs a restart: %s", strings.Join(c.NeedRestart, ", ")))
	}
	return strings.Join(parts, "; ")
}

// Reload applies cfg's LUN and ACL differences live.
func (s *Server) Reload(cfg Config) error {
	ch, err := s.Apply(cfg)
	if err != nil {
		return err
	}
	if len(ch.NeedRestart) > 0 {
		s.log.Warn("reload: changes that need a restart were not applied", "tables", strings.Join(ch.NeedRestart, ", "))
	}
	s.log.Info("reloaded", "changes", ch.String())
	return nil
}

// Apply is Reload, returning what it changed. The new LUNs are opened
// before anything is touched, so a LUN that cannot open leaves the
// server as it was; then LUNs are removed, replaced, added and resized,
// and the ACLs set last. A LUN whose settings changed is removed and added
// again (its initiators see REPORTED LUNS DATA HAS CHANGED); one whose
// size alone changed, within what its engine holds, is resized in place
// (CAPACITY DATA HAS CHANGED).
func (s *Server) Apply(cfg Config) (Changes, error) {
	var ch Changes
	if err := cfg.Validate(); err != nil {
		return ch, err
	}
	cfg = withDefaults(cfg)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting {
		return ch, ErrClosed
	}
	old := s.cfg

	type resize struct {
		l     *lun
		bytes uint64
	}
	var (
		opened  = map[uint16]*lun{}
		resizes []resize
		newLUNs = map[uint16]LUNConfig{}
	)
	for _, c := range cfg.LUNs {
		if c.Serial == "" {
			c.Serial = defaultSerial(s.guid, c.Number)
		}
		newLUNs[c.Number] = c
		cur, ok := s.luns[c.Number]
		switch {
		case !ok:
			ch.AddedLUNs = append(ch.AddedLUNs, c.Number)
		case cur.cfg == c:
		case onlySize(cur, c):
			n, _ := ParseSize(c.Size)
			resizes = append(resizes, resize{cur, n})
			ch.ResizedLUNs = append(ch.ResizedLUNs, c.Number)
			continue
		default:
			ch.ReplacedLUNs = append(ch.ReplacedLUNs, c.Number)
		}
		if ok && cur.cfg == c {
			continue
		}
		l, err := openLUN(c, s.guid)
		if err != nil {
			for _, o := range opened {
				_ = o.dev.Close()
			}
			return Changes{}, fmt.Errorf("server: reload: nothing changed: %w", err)
		}
		opened[c.Number] = l
	}
	for n := range s.luns {
		if _, ok := newLUNs[n]; !ok {
			ch.RemovedLUNs = append(ch.RemovedLUNs, n)
		}
	}
	slices.Sort(ch.RemovedLUNs)

	var errs []error
	for _, n := range ch.RemovedLUNs {
		errs = append(errs, s.removeLUNLocked(n))
	}
	for _, n := range ch.ReplacedLUNs {
		if err := s.removeLUNLocked(n); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range append(slices.Clone(ch.ReplacedLUNs), ch.AddedLUNs...) {
		l := opened[n]
		if err := s.tgt.AddLUN(n, l.lu); err != nil {
			_ = l.dev.Close()
			errs = append(errs, fmt.Errorf("server: reload: add LUN %d: %w", n, err))
			continue
		}
		s.luns[n] = l
	}
	for _, r := range resizes {
		if err := r.l.lu.Resize(r.bytes / uint64(r.l.lu.BlockSize())); err != nil {
			errs = append(errs, fmt.Errorf("server: reload: resize LUN %d: %w", r.l.cfg.Number, err))
			continue
		}
		r.l.cfg.Size = newLUNs[r.l.cfg.Number].Size
	}

	oldACL := map[string]ACLConfig{}
	for _, a := range old.ACLs {
		oldACL[a.Name] = a
	}
	for _, a := range cfg.ACLs {
		o, ok := oldACL[a.Name]
		switch {
		case !ok:
			ch.AddedACLs = append(ch.AddedACLs, a.Name)
		case !slices.Equal(o.Initiators, a.Initiators) || !slices.Equal(o.LUNs, a.LUNs):
			ch.ChangedACLs = append(ch.ChangedACLs, a.Name)
		}
		delete(oldACL, a.Name)
	}
	for name := range oldACL {
		ch.RemovedACLs = append(ch.RemovedACLs, name)
	}
	slices.Sort(ch.RemovedACLs)
	if len(ch.AddedACLs)+len(ch.ChangedACLs)+len(ch.RemovedACLs) > 0 {
		if err := s.tgt.SetACLs(targetACLs(cfg.ACLs)); err != nil {
			errs = append(errs, fmt.Errorf("server: reload: ACLs: %w", err))
		} else {
			s.cfg.ACLs = cfg.ACLs
		}
	}
	s.cfg.LUNs = s.cfg.LUNs[:0]
	for _, l := range s.sortedLUNs() {
		s.cfg.LUNs = append(s.cfg.LUNs, l.cfg)
	}

	if old.Target != cfg.Target {
		ch.NeedRestart = append(ch.NeedRestart, "target")
	}
	if !slices.Equal(old.Listeners, cfg.Listeners) {
		ch.NeedRestart = append(ch.NeedRestart, "listener")
	}
	if old.Control != cfg.Control {
		ch.NeedRestart = append(ch.NeedRestart, "control")
	}
	if old.Metrics != cfg.Metrics {
		ch.NeedRestart = append(ch.NeedRestart, "metrics")
	}
	if err := errors.Join(errs...); err != nil {
		return ch, fmt.Errorf("server: reload: partly applied (%s): %w", ch, err)
	}
	return ch, nil
}

// onlySize reports whether c differs from l's configuration in its size
// alone, and the engine holds the new size, so Resize can apply it.
func onlySize(l *lun, c LUNConfig) bool {
	a := l.cfg
	a.Size = c.Size
	if a != c || c.Size == "" {
		return false
	}
	n, err := ParseSize(c.Size)
	bs := uint64(l.lu.BlockSize())
	return err == nil && n > 0 && n%bs == 0 && int64(n) <= l.dev.Info().SizeBytes
}
