package rc

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"
)

// ErrAllowListEntry means a ServerUri given to NewAllowList cannot match
// any ReverseHello: it is empty, longer than MaxURILength or not UTF-8.
var ErrAllowListEntry = errors.New("rc: invalid allow-list entry")

// AllowList is a Validator that admits exactly the listed ServerUris. The
// match is exact and case-sensitive: no normalization, no patterns, no
// accept-all mode. The zero value and a nil *AllowList reject everything, as
// does a list built from no URIs.
//
// An AllowList is immutable and safe for concurrent use.
type AllowList struct {
	uris map[string]struct{}
}

// NewAllowList returns an AllowList of serverURIs. Duplicates are allowed.
// Every entry that could never match (empty, longer than MaxURILength, not
// UTF-8) is reported, all at once, as an error wrapping ErrAllowListEntry.
func NewAllowList(serverURIs ...string) (*AllowList, error) {
	a := &AllowList{uris: make(map[string]struct{}, len(serverURIs))}
	var errs []error
	for i, u := range serverURIs {
		switch {
		case u == "":
			errs = append(errs, fmt.Errorf("%w: [%d] is empty", ErrAllowListEntry, i))
		case len(u) > MaxURILength:
			errs = append(errs, fmt.Errorf("%w: [%d] is %d bytes, more than %d", ErrAllowListEntry, i, len(u), MaxURILength))
		case !utf8.ValidString(u):
			errs = append(errs, fmt.Errorf("%w: [%d] %s is not UTF-8", ErrAllowListEntry, i, quoteBytes([]byte(u))))
		default:
			a.uris[u] = struct{}{}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return a, nil
}

// Validate admits h when its ServerURI is on the list and otherwise returns
// a *HelloError wrapping ErrNotAllowed. It does not look at the EndpointUrl:
// the Listener checks that with CheckEndpointURL for every Validator.
func (a *AllowList) Validate(h Hello) error {
	if a.Contains(h.ServerURI) {
		return nil
	}
	return &HelloError{ServerURI: h.ServerURI, EndpointURL: h.EndpointURL, Err: ErrNotAllowed}
}

// Contains reports whether serverURI is on the list.
func (a *AllowList) Contains(serverURI string) bool {
	if a == nil {
		return false
	}
	_, ok := a.uris[serverURI]
	return ok
}

// URIs returns the listed ServerUris, sorted.
func (a *AllowList) URIs() []string {
	if a == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(a.uris))
}
