package config

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
	"github.com/rcbridge/rcbridge/mapping"
)

// EnvPrefix starts every override variable. Only variables that continue
// with a section name (RCBRIDGE_LISTENER_, RCBRIDGE_SERVERS_,
// RCBRIDGE_CLIENT_, RCBRIDGE_BUS_, RCBRIDGE_MAP_, RCBRIDGE_HTTP_,
// RCBRIDGE_LOG_) are overrides; others, such as RCBRIDGE_CONFIG for the
// daemon's file name or the test suite's RCBRIDGE_NODE, are left alone.
const EnvPrefix = "RCBRIDGE_"

// Load reads the TOML file at path, applies the environment overrides found
// in environ (os.Environ() in the daemon), decodes and validates. It reports
// every problem at once: the error is an errors.Join of *FieldError values,
// one per problem, each naming its key path and quoting the offending value,
// and all wrapping ErrInvalid. Only an unreadable file or broken TOML syntax
// stops it early.
func Load(path string, environ []string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return Parse(data, environ)
}

// Parse is Load for file contents.
func Parse(data []byte, environ []string) (*Config, error) {
	k := koanf.New(".")
	if err := k.Load(rawbytes.Provider(data), toml.Parser()); err != nil {
		return nil, fmt.Errorf("%w: TOML: %v", ErrInvalid, err)
	}
	overrides, fromEnv, envErrs := envOverrides(environ)
	if len(overrides) > 0 {
		if err := k.Load(confmap.Provider(overrides, "."), nil); err != nil {
			return nil, fmt.Errorf("%w: environment overrides: %v", ErrInvalid, err)
		}
	}

	cfg := Default()
	// Arrays of tables decode onto pre-filled entries, so that every entry
	// starts from its defaults.
	cfg.Servers = filled(k.Get("servers"), DefaultServer())
	cfg.Map = filled(k.Get("map"), DefaultMapRow())
	dc := &mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			textOnly,
			strictNumbers,
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.TextUnmarshallerHookFunc(),
		),
		ErrorUnused: true,
		TagName:     "koanf",
	}
	var decodeErrs []*FieldError
	if err := k.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{DecoderConfig: dc}); err != nil {
		decodeErrs = flattenDecodeErrors(err, nil)
	}
	slices.SortStableFunc(decodeErrs, func(a, b *FieldError) int { return strings.Compare(a.Path, b.Path) })

	failed := make([]string, 0, len(decodeErrs))
	var errs []error
	for _, e := range envErrs {
		errs = append(errs, e)
	}
	for _, e := range decodeErrs {
		failed = append(failed, e.Path)
		if env, ok := fromEnv[e.Path]; ok {
			e.Path += " (from " + env + ")"
		}
		errs = append(errs, e)
	}
	// Problems that follow from a value that failed to decode (a node that
	// did not parse is also "missing") would only repeat it: skip them.
	for _, e := range cfg.validate() {
		if !coveredBy(e.Path, failed) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &cfg, nil
}

// filled returns n copies of def, n being the length of the raw array of
// tables (0 when raw is absent or not an array; the decoder reports that).
func filled[T any](raw any, def T) []T {
	v := reflect.ValueOf(raw)
	if v.Kind() != reflect.Slice {
		return nil
	}
	out := make([]T, v.Len())
	for i := range out {
		out[i] = def
	}
	return out
}

// coveredBy reports whether path is one of failed or a parent of one.
func coveredBy(path string, failed []string) bool {
	for _, f := range failed {
		if f == path || strings.HasPrefix(f, path+".") || strings.HasPrefix(f, path+"[") {
			return true
		}
	}
	return false
}

// strictNumbers refuses numbers that do not fit an integer key instead of
// letting them wrap (300 into a uint8) or truncate (1.5 into an int).
func strictNumbers(f, t reflect.Type, data any) (any, error) {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if !isIntKind(t.Kind()) && !(t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64) {
		return data, nil
	}
	v := reflect.ValueOf(data)
	text := fmt.Sprint(data)
	var i int64
	var u uint64
	neg := false
	switch {
	case isIntKind(f.Kind()):
		i = v.Int()
		neg, u = i < 0, uint64(i)
	case f.Kind() >= reflect.Uint && f.Kind() <= reflect.Uint64:
		u = v.Uint()
		i = int64(u)
	case f.Kind() == reflect.Float32 || f.Kind() == reflect.Float64:
		x := v.Float()
		if x != math.Trunc(x) || math.Abs(x) >= 1<<63 {
			return nil, badValue(text, "expected an integer")
		}
		i, neg = int64(x), x < 0
		u = uint64(i)
	default:
		return data, nil // strings (env, text types) and the rest: other hooks decide
	}
	bits := t.Bits()
	if isIntKind(t.Kind()) {
		lo, hi := int64(-1)<<(bits-1), int64(uint64(1)<<(bits-1)-1)
		if (neg && i < lo) || (!neg && (u > uint64(hi))) {
			return nil, badValue(text, "out of range "+strconv.FormatInt(lo, 10)+".."+strconv.FormatInt(hi, 10))
		}
		return i, nil
	}
	hi := uint64(math.MaxUint64) >> (64 - bits)
	if neg || u > hi {
		return nil, badValue(text, "out of range 0.."+strconv.FormatUint(hi, 10))
	}
	return u, nil
}

func isIntKind(k reflect.Kind) bool { return k >= reflect.Int && k <= reflect.Int64 }

// textOnly makes keys of the self-parsing types take text, so that a
// number does not silently become, say, a duration of 100 ns or a security
// policy by index. The exceptions are QoS (0, 1, 2 are natural as numbers)
// and server lists (a list of strings).
func textOnly(f, t reflect.Type, data any) (any, error) {
	if f.Kind() == reflect.String || !isTextType(t) {
		return data, nil
	}
	switch {
	case t == reflect.TypeFor[mapping.QoS]() && f.Kind() >= reflect.Int && f.Kind() <= reflect.Uint64:
		return data, nil
	case t == reflect.TypeFor[ServerList]() && (f.Kind() == reflect.Slice || f.Kind() == reflect.Array):
		return data, nil
	case t == reflect.TypeFor[Duration]():
		return nil, badValue(fmt.Sprint(data), `a duration is text with a unit, e.g. "500ms", "5s"`)
	}
	return nil, badValue(fmt.Sprint(data), "expected a string, got "+typeNoun(f))
}

func fieldErr(path string, err error) *FieldError { return &FieldError{Path: path, Err: err} }

// reason is a plain problem description.
func reason(msg string) error { return errors.New(msg) }

// flattenDecodeErrors turns mapstructure's nested errors into FieldErrors
// with koanf key paths.
func flattenDecodeErrors(err error, out []*FieldError) []*FieldError {
	de, isDecodeErr := err.(*mapstructure.DecodeError)
	switch {
	case isDecodeErr:
		path := de.Name()
		if strings.Contains(path, "config.") { // the root struct's type name
			path = ""
		}
		return append(out, decodeError(path, de.Unwrap())...)
	case err == nil:
		return out
	}
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			out = flattenDecodeErrors(inner, out)
		}
		return out
	case interface{ Unwrap() error }: // mapstructure's "decoding failed" wrapper
		return flattenDecodeErrors(e.Unwrap(), out)
	}
	return append(out, fieldErr("", err))
}

func decodeError(path string, err error) []*FieldError {
	var ve *mapping.ValueError
	var ute *mapstructure.UnconvertibleTypeError
	var pe *mapstructure.ParseError
	switch {
	case strings.HasPrefix(err.Error(), "has invalid keys: "):
		var out []*FieldError
		for _, key := range strings.Split(strings.TrimPrefix(err.Error(), "has invalid keys: "), ", ") {
			p := key
			if path != "" {
				p = path + "." + key
			}
			out = append(out, fieldErr(p, reason("unknown key")))
		}
		return out
	case errors.As(err, &ve):
		return []*FieldError{fieldErr(path, ve)}
	case errors.As(err, &ute):
		return []*FieldError{fieldErr(path, badValue(fmt.Sprint(ute.Value), "expected "+typeNoun(ute.Expected.Type())+", got "+typeNoun(reflect.TypeOf(ute.Value))))}
	case errors.As(err, &pe):
		return []*FieldError{fieldErr(path, badValue(fmt.Sprint(pe.Value), "expected "+typeNoun(pe.Expected.Type())))}
	}
	return []*FieldError{fieldErr(path, err)}
}

// typeNoun names a Go type the way a TOML author thinks of it.
func typeNoun(t reflect.Type) string {
	if t == nil {
		return "nothing"
	}
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
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a table"
	}
	return t.String()
}

// envLeaf is a key that an environment variable can set.
type envLeaf struct {
	path   string
	typ    reflect.Type
	secret bool
}

// envLeaves lists the keys outside arrays of tables, by variable name.
func envLeaves() map[string]envLeaf {
	out := map[string]envLeaf{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("koanf")
			if tag == "" || tag == "-" {
				continue
			}
			path := tag
			if prefix != "" {
				path = prefix + "." + tag
			}
			ft := f.Type
			switch {
			case ft == reflect.TypeFor[Secret]():
				out[envName(path)] = envLeaf{path: path, typ: ft, secret: true}
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && !isTextType(ft.Elem()):
				// [[servers]] and [[map]]: not reachable by name.
			case ft.Kind() == reflect.Struct && !isTextType(ft):
				walk(ft, path)
			default:
				out[envName(path)] = envLeaf{path: path, typ: ft}
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return out
}

// envName is the variable that overrides key path.
func envName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(path))
}

// envOverrides turns RCBRIDGE_ variables into a flat key map, converting
// each value to its key's kind. fromEnv maps key paths to variable names.
func envOverrides(environ []string) (overrides map[string]any, fromEnv map[string]string, errs []*FieldError) {
	leaves := envLeaves()
	var sections []string
	for i := 0; i < reflect.TypeFor[Config]().NumField(); i++ {
		sections = append(sections, envName(reflect.TypeFor[Config]().Field(i).Tag.Get("koanf"))+"_")
	}
	overrides, fromEnv = map[string]any{}, map[string]string{}
	for _, kv := range environ {
		name, raw, ok := strings.Cut(kv, "=")
		if !ok || !slices.ContainsFunc(sections, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		leaf, ok := leaves[name]
		switch {
		case !ok:
			errs = append(errs, fieldErr("env "+name, reason("matches no configuration key (arrays [[servers]] and [[map]] cannot be overridden)")))
			continue
		case leaf.secret:
			errs = append(errs, fieldErr("env "+name, reason("secrets are not set through "+EnvPrefix+" variables; name the variable that holds it in "+leaf.path+"_env")))
			continue
		}
		v, err := envValue(leaf.typ, raw)
		if err != nil {
			errs = append(errs, fieldErr("env "+name+" ("+leaf.path+")", err))
			continue
		}
		overrides[leaf.path] = v
		fromEnv[leaf.path] = name
	}
	slices.SortFunc(errs, func(a, b *FieldError) int { return strings.Compare(a.Path, b.Path) })
	return overrides, fromEnv, errs
}

// envValue converts raw to what the TOML decoder would have produced for a
// key of type t.
func envValue(t reflect.Type, raw string) (any, error) {
	if isTextType(t) {
		return raw, nil // decoded by the TextUnmarshaler hook
	}
	switch t.Kind() {
	case reflect.String:
		return raw, nil
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return nil, badValue(raw, "expected true or false")
		}
		return b, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return nil, badValue(raw, "expected an integer")
		}
		return n, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(raw, 10, 64)
		if err != nil {
			return nil, badValue(raw, "expected a non-negative integer")
		}
		return n, nil
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return nil, badValue(raw, "expected a number")
		}
		return f, nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			var out []any
			for _, part := range strings.Split(raw, ",") {
				if part = strings.TrimSpace(part); part != "" {
					out = append(out, part)
				}
			}
			return out, nil
		}
	}
	return nil, badValue(raw, "this key cannot be set from the environment")
}

// isTextType reports whether values of t parse themselves from text.
func isTextType(t reflect.Type) bool {
	return reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]())
}
