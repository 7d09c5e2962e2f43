package vercelfake

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
)

// maxJSONBody bounds a JSON request body.
const maxJSONBody = 4 << 20

// decodeBody decodes the JSON body of r into v strictly, as the API's validator does: unknown
// properties are rejected ("should NOT have additional property"), types are checked. An empty
// body decodes as {} whatever the content type says (the SDK sends content-type
// application/json on bodiless POSTs). With private set, top-level properties whose name starts
// with "__" (the SDK's private parameters) are dropped first.
func decodeBody(r *http.Request, v any, private bool) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	if err != nil {
		return badRequest("cannot read the request body: %v", err)
	}
	if len(data) > maxJSONBody {
		return badRequest("the request body is larger than %d bytes", maxJSONBody)
	}
	return decodeJSON(data, v, private)
}

// decodeJSON is decodeBody on bytes.
func decodeJSON(data []byte, v any, private bool) error {
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	if private {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return jsonError(err)
		}
		if m == nil {
			return badRequest("the request body should be object")
		}
		for k := range m {
			if strings.HasPrefix(k, "__") {
				delete(m, k)
			}
		}
		data, _ = json.Marshal(m)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return badRequest("the request body holds more than one JSON value")
	}
	return nil
}

// jsonError turns a decoding error into the API's validation message.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		if te.Field == "" {
			return badRequest("the request body should be %s", jsonType(te.Type))
		}
		return badRequest("`%s` should be %s", te.Field, jsonType(te.Type))
	case errors.As(err, &se):
		return badRequest("the request body is not valid JSON: %v", err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest("should NOT have additional property `%s`", name)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("the request body is not valid JSON: unexpected end")
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	return badRequest("%v", err)
}

// jsonType names a Go type the way a JSON schema validator does.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Bool:
		return "boolean"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	}
	return "object"
}
