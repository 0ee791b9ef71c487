package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrSecret is wrapped by errors reading a secret.
var ErrSecret = errors.New("config: secret unavailable")

// SecretRef says where a secret comes from: a file or an environment
// variable (exactly one of them when a secret is needed).
type SecretRef struct {
	File string
	Env  string
}

// IsSet reports whether a source is named.
func (r SecretRef) IsSet() bool { return r.File != "" || r.Env != "" }

// Load reads the secret. A file's trailing newline is dropped; an empty
// secret is an error. lookupEnv is os.LookupEnv in the daemon. Errors name
// the source, never the secret.
func (r SecretRef) Load(lookupEnv func(string) (string, bool)) (Secret, error) {
	switch {
	case r.File != "" && r.Env != "":
		return Secret{}, fmt.Errorf("%w: both a file (%q) and an environment variable (%s) are named", ErrSecret, r.File, r.Env)
	case r.File != "":
		b, err := os.ReadFile(r.File)
		if err != nil {
			return Secret{}, fmt.Errorf("%w: %w", ErrSecret, err)
		}
		s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if s == "" {
			return Secret{}, fmt.Errorf("%w: file %q is empty", ErrSecret, r.File)
		}
		return NewSecret(s), nil
	case r.Env != "":
		s, ok := lookupEnv(r.Env)
		if !ok || s == "" {
			return Secret{}, fmt.Errorf("%w: environment variable %s is not set", ErrSecret, r.Env)
		}
		return NewSecret(s), nil
	}
	return Secret{}, fmt.Errorf("%w: no file or environment variable named", ErrSecret)
}
