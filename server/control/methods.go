package control

import (
	"encoding/json"
	"maps"
	"slices"
	"sync"

	"github.com/usrpt/usrpt/server"
)

// service runs the methods on an API.
type service struct {
	api API
	// lunAdd serialises lun_add, so that two adds without a number do
	// not both pick the same lowest free one.
	lunAdd sync.Mutex
}

// methods are the control socket's methods, by name.
var methods = map[string]func(s *service, params json.RawMessage) (any, *Error){
	"get_sessions":   (*service).getSessions,
	"get_luns":       (*service).getLUNs,
	"get_acls":       (*service).getACLs,
	"get_stats":      (*service).getStats,
	"lun_add":        (*service).lunAddMethod,
	"lun_remove":     (*service).lunRemove,
	"lun_resize":     (*service).lunResize,
	"acl_add":        (*service).aclAdd,
	"acl_remove":     (*service).aclRemove,
	"session_logout": (*service).sessionLogout,
}

// Methods lists the method names, sorted.
func Methods() []string { return slices.Sorted(maps.Keys(methods)) }

// run calls one method; a panic in the API becomes an internal error, so
// that no request takes the daemon down.
func (s *service) run(c *call) (result any, rerr *Error) {
	m, ok := methods[c.method]
	if !ok {
		return nil, errorf(CodeMethodNotFound, "method not found: %q", c.method)
	}
	defer func() {
		if p := recover(); p != nil {
			result, rerr = nil, errorf(CodeInternalError, "internal error in %s: %v", c.method, p)
		}
	}()
	return m(s, c.params)
}

// noParams refuses params on a method that takes none.
func noParams(params json.RawMessage) *Error {
	var empty struct{}
	return decodeParams(params, &empty)
}

func serverError(err error) *Error { return &Error{Code: CodeServerError, Message: err.Error()} }

func (s *service) getSessions(params json.RawMessage) (any, *Error) {
	if e := noParams(params); e != nil {
		return nil, e
	}
	sessions := s.api.Sessions()
	if sessions == nil {
		return []struct{}{}, nil // [] rather than null
	}
	return sessions, nil
}

func (s *service) getLUNs(params json.RawMessage) (any, *Error) {
	if e := noParams(params); e != nil {
		return nil, e
	}
	infos := s.api.LUNs()
	luns := make([]LUN, len(infos))
	for i, info := range infos {
		luns[i] = lunFromInfo(info)
	}
	return luns, nil
}

func (s *service) getACLs(params json.RawMessage) (any, *Error) {
	if e := noParams(params); e != nil {
		return nil, e
	}
	cfgs := s.api.ACLs()
	acls := make([]ACL, len(cfgs))
	for i, a := range cfgs {
		acls[i] = ACL{Name: a.Name, Initiators: a.Initiators, LUNs: a.LUNs}
		if acls[i].Initiators == nil {
			acls[i].Initiators = []string{}
		}
	}
	return acls, nil
}

func (s *service) getStats(params json.RawMessage) (any, *Error) {
	if e := noParams(params); e != nil {
		return nil, e
	}
	return s.api.Stats(), nil
}

func (s *service) lunAddMethod(params json.RawMessage) (any, *Error) {
	var p LUNAddParams
	if e := decodeParams(params, &p); e != nil {
		return nil, e
	}
	cfg, err := p.config()
	if err != nil {
		return nil, errorf(CodeInvalidParams, "invalid params: %v", err)
	}
	s.lunAdd.Lock()
	defer s.lunAdd.Unlock()
	if p.Number != nil {
		cfg.Number = *p.Number
	} else {
		n, ok := lowestFree(s.api.LUNs())
		if !ok {
			return nil, errorf(CodeServerError, "no free LUN number")
		}
		cfg.Number = n
	}
	info, err := s.api.AddLUN(cfg)
	if err != nil {
		return nil, serverError(err)
	}
	return lunFromInfo(info), nil
}

// lowestFree is the lowest LUN number not in use. The server has no
// "any number" request (LUNConfig.Number is a plain uint16 and 0 is a
// LUN), so the control socket picks one, under the lun_add lock.
func lowestFree(luns []server.LUNInfo) (uint16, bool) {
	used := make(map[uint16]bool, len(luns))
	for _, l := range luns {
		used[l.Number] = true
	}
	for n := range 1 << 14 { // SAM-5 flat and peripheral addressing: 14 bits
		if !used[uint16(n)] {
			return uint16(n), true
		}
	}
	return 0, false
}

func (s *service) lunRemove(params json.RawMessage) (any, *Error) {
	var p LUNParams
	if e := decodeParams(params, &p); e != nil {
		return nil, e
	}
	if p.Number == nil {
		return nil, errorf(CodeInvalidParams, `invalid params: "number" is required`)
	}
	if err := s.api.RemoveLUN(*p.Number); err != nil {
		return nil, serverError(err)
	}
	return true, nil
}

func (s *service) lunResize(params json.RawMessage) (any, *Error) {
	var p LUNResizeParams
	if e := decodeParams(params, &p); e != nil {
		return nil, e
	}
	if p.Number == nil || p.Size == "" {
		return nil, errorf(CodeInvalidParams, `invalid params: "number" and "size" are required`)
	}
	n, err := p.Size.Bytes()
	if err != nil {
		return nil, errorf(CodeInvalidParams, "invalid params: %v", err)
	}
	if err := s.api.ResizeLUN(*p.Number, n); err != nil {
		return nil, serverError(err)
	}
	return true, nil
}

func (s *service) aclAdd(params json.RawMessage) (any, *Error) {
	var p ACL
	if e := decodeParams(params, &p); e != nil {
		return nil, e
	}
	if p.Name == "" || len(p.Initiators) == 0 {
		return nil, errorf(CodeInvalidParams, `invalid params: "name" and "initiators" are required`)
	}
	for _, id := range p.Initiators {
		if id == "" {
			return nil, errorf(CodeInvalidParams, "invalid params: an empty initiator")
		}
	}
	if err := s.api.AddACL(server.ACLConfig{Name: p.Name, Initiators: p.Initiators, LUNs: p.LUNs}); err != nil {
		return nil, serverError(err)
	}
	return true, nil
}

func (s *service) aclRemove(params json.RawMessage) (any, *Error) {
	var p NameParams
	if e := decodeParams(params, &p); e != nil {
		return nil, e
	}
	if p.Name == "" {
		return nil, errorf(CodeInvalidParams, `invalid params: "name" is required`)
	}
	if err := s.api.RemoveACL(p.Name); err != nil {
		return nil, serverError(err)
	}
	return true, nil
}

func (s *service) sessionLogout(params json.RawMessage) (any, *Error) {
	var p SessionParams
	if e := decodeParams(params, &p); e != nil {
		return nil, e
	}
	if p.ID == nil {
		return nil, errorf(CodeInvalidParams, `invalid params: "id" is required`)
	}
	if err := s.api.Logout(*p.ID); err != nil {
		return nil, serverError(err)
	}
	return true, nil
}
