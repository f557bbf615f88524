package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/roamnet/roam/api/roampb"
)

// The JSON encoding of the API (see the package comment): proto field names,
// zero values left out.
var (
	marshalOptions = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false}
	// Request bodies are strict: an unknown field is an error, so a typo
	// never goes unnoticed.
	unmarshalOptions = protojson.UnmarshalOptions{DiscardUnknown: false}
)

// marshalJSON encodes m as compact JSON. protojson varies its white space on
// purpose; compacting makes the bytes stable.
func marshalJSON(m proto.Message) ([]byte, error) {
	b, err := marshalOptions.Marshal(m)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeMessage sends m as the JSON body of a response with the given status.
func writeMessage(w http.ResponseWriter, code int, m proto.Message) {
	b, err := marshalJSON(m)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding the response: %v", err)
		return
	}
	writeBody(w, code, b)
}

// writeError sends a roampb.Error with the given HTTP status and message.
func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	msg := strings.ToValidUTF8(fmt.Sprintf(format, args...), "\uFFFD")
	b, err := marshalJSON(&roampb.Error{Code: int32(code), Message: msg})
	if err != nil {
		// Unreachable: the message is valid UTF-8.
		b = []byte(`{"code":500,"message":"encoding an error failed"}`)
		code = http.StatusInternalServerError
	}
	writeBody(w, code, b)
}

func writeBody(w http.ResponseWriter, code int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// readBody reads the request body. On failure it has answered the request
// (413 for a body over the limit, 400 for anything else) and returns false.
// Routes that take a body use it behind limitBody.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.refuse(w, r, http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", tooBig.Limit)
			return nil, false
		}
		s.refuse(w, r, http.StatusBadRequest, "reading the request body: %v", err)
		return nil, false
	}
	return b, true
}

// unmarshalBody decodes a request body read by readBody into m, strictly
// (unknown fields are errors), with an error message for the client: a
// handler answers it with 400.
func unmarshalBody(b []byte, m proto.Message) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return errors.New("invalid request body: it is empty; want a JSON object")
	}
	if err := unmarshalOptions.Unmarshal(b, m); err != nil {
		// protojson's errors start with "proto:" and a space or, to keep
		// callers from matching them, sometimes a no-break space.
		msg := strings.TrimLeft(strings.TrimPrefix(err.Error(), "proto:"), " \u00a0")
		return fmt.Errorf("invalid request body: %s", msg)
	}
	return nil
}
