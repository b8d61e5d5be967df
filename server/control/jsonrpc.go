package control

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// JSON-RPC 2.0 error codes (JSON-RPC 2.0 specification, section 5.1).
const (
	CodeParseError     = -32700 // not JSON
	CodeInvalidRequest = -32600 // JSON, but not a request object
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
	// CodeServerError is every application error: the server refused the
	// change (a LUN that does not exist, a number in use, a bad size); the
	// message is the server's.
	CodeServerError = -32000
)

// Error is a JSON-RPC error object; Client.Call returns one when the
// server answered with an error.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func (e *Error) Error() string {
	if e.Code == CodeServerError {
		return e.Message
	}
	return fmt.Sprintf("%s (JSON-RPC error %d)", e.Message, e.Code)
}

func errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// request is one request object as read: the members kept raw, so that
// the id goes back byte for byte and a member of the wrong type is an
// invalid request rather than a decode failure.
type request struct {
	JSONRPC json.RawMessage `json:"jsonrpc"`
	Method  json.RawMessage `json:"method"`
	Params  json.RawMessage `json:"params"`
	ID      json.RawMessage `json:"id"`
}

// call is one request checked: a method to run, or the error to answer.
type call struct {
	id     json.RawMessage // nil: a notification, which gets no response
	method string
	params json.RawMessage // nil or an object
	err    *Error
}

// response is one response object.
type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

var null = json.RawMessage("null")

// parseMessage splits one JSON value read from a connection into its
// calls: one for an object, one per element for a batch. A value that is
// not an object or a non-empty array is a single invalid request.
func parseMessage(raw []byte) (calls []call, batch bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return []call{{id: null, err: errorf(CodeInvalidRequest, "empty request")}}, false
	}
	if raw[0] != '[' {
		return []call{parseCall(raw)}, false
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return []call{{id: null, err: errorf(CodeParseError, "parse error: %v", err)}}, false
	}
	if len(elems) == 0 {
		return []call{{id: null, err: errorf(CodeInvalidRequest, "empty batch")}}, false
	}
	calls = make([]call, len(elems))
	for i, e := range elems {
		calls[i] = parseCall(e)
	}
	return calls, true
}

// parseCall checks one request object (JSON-RPC 2.0 section 4).
func parseCall(raw json.RawMessage) call {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return call{id: null, err: errorf(CodeInvalidRequest, "invalid request: want an object")}
	}
	var r request
	if err := json.Unmarshal(raw, &r); err != nil {
		return call{id: null, err: errorf(CodeInvalidRequest, "invalid request: %v", err)}
	}
	c := call{id: r.ID}
	if r.ID != nil {
		switch r.ID[0] {
		case '"', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		default:
			// An object, array or boolean id: answer with a null id, as
			// for any request whose id cannot be used.
			c.id = null
			c.err = errorf(CodeInvalidRequest, "invalid request: id must be a string, a number or null")
			return c
		}
	}
	errID := c.id
	if errID == nil {
		errID = null // an invalid notification is still answered (section 5)
	}
	var version string
	if json.Unmarshal(r.JSONRPC, &version) != nil || version != "2.0" {
		return call{id: errID, err: errorf(CodeInvalidRequest, `invalid request: "jsonrpc" must be "2.0"`)}
	}
	if json.Unmarshal(r.Method, &c.method) != nil || c.method == "" {
		return call{id: errID, err: errorf(CodeInvalidRequest, `invalid request: "method" must be a non-empty string`)}
	}
	switch {
	case r.Params == nil || bytes.Equal(r.Params, null):
	case r.Params[0] == '{':
		c.params = r.Params
	default:
		// By-position params are valid JSON-RPC, but every method here
		// takes named ones, as SPDK's do.
		return call{id: errID, err: errorf(CodeInvalidParams, "invalid params: want an object")}
	}
	return c
}

// decodeParams decodes a call's params strictly into p: an unknown
// member, or one of the wrong type, is invalid params. No params decode
// as an empty object.
func decodeParams(params json.RawMessage, p any) *Error {
	if params == nil {
		params = json.RawMessage("{}")
	}
	d := json.NewDecoder(bytes.NewReader(params))
	d.DisallowUnknownFields()
	if err := d.Decode(p); err != nil {
		return errorf(CodeInvalidParams, "invalid params: %v", err)
	}
	return nil
}
