package tools

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
)

// decodeArgs decodes a call's arguments into args (a pointer to an argument struct). It rejects
// unknown arguments and wrong JSON types with an error that names the argument and lists the
// ones the tool takes.
func decodeArgs(req mcp.CallToolRequest, args any) error {
	msg, arg := decodeArgsMsg(req, args)
	if msg == "" {
		return nil
	}
	return argError(arg, msg)
}

// decodeArgsMsg is decodeArgs' check: a message ("" when fine) and the argument it is about.
func decodeArgsMsg(req mcp.CallToolRequest, args any) (string, string) {
	raw := req.Params.RawArguments
	if len(raw) == 0 && req.Params.Arguments != nil {
		var err error
		if raw, err = json.Marshal(req.Params.Arguments); err != nil {
			return "they are not a JSON object: " + err.Error(), "arguments"
		}
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		raw = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(args)
	if err == nil {
		return "", ""
	}
	names := argumentNames(args)
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return fmt.Sprintf("expected a JSON object with the arguments %s, got a JSON %s", names, typeErr.Value), "arguments"
	case errors.As(err, &typeErr):
		return fmt.Sprintf("expected %s, got a JSON %s", jsonKind(typeErr.Type), typeErr.Value), typeErr.Field
	case errors.As(err, &syntaxErr):
		return "not valid JSON: " + err.Error(), "arguments"
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Sprintf("unknown argument %s; %s takes only %s", field, req.Params.Name, names), strings.Trim(field, `"`)
	}
	return strings.TrimPrefix(err.Error(), "json: "), "arguments"
}

// argumentNames lists the top-level JSON names of an argument struct, for error messages.
func argumentNames(args any) string {
	t := reflect.TypeOf(args)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "a value of type " + t.String()
}

// workspaceRef checks the workspace argument every workspace tool takes.
func workspaceRef(ref string) error {
	if strings.TrimSpace(ref) == "" {
		return argError("workspace", "missing; give a workspace id (ws_…) or name; list_workspaces lists them, create_workspace makes one")
	}
	return nil
}
