package mapping

import "strings"

// Server patterns in rows are exact ServerUris or globs: '*' matches any
// run of characters (including none, and including '/' and ':'), '?' matches
// one character, and '\' makes the next character literal. Nothing else is
// special, so ServerUris with '[' or '{' need no escaping.

// isGlob reports whether p contains an unescaped '*' or '?'.
func isGlob(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '*', '?':
			return true
		}
	}
	return false
}

// checkGlob returns a reason when p is malformed.
func checkGlob(p string) string {
	if p == "" {
		return "empty server pattern"
	}
	if strings.HasSuffix(p, `\`) && !strings.HasSuffix(p, `\\`) {
		n := 0
		for i := len(p) - 1; i >= 0 && p[i] == '\\'; i-- {
			n++
		}
		if n%2 == 1 {
			return `trailing '\' escapes nothing`
		}
	}
	return ""
}

// unescapeGlob returns the literal text of a pattern without wildcards.
func unescapeGlob(p string) string {
	if strings.IndexByte(p, '\\') < 0 {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' && i+1 < len(p) {
			i++
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// globMatch reports whether s matches pattern p. It runs in O(len(p)·len(s))
// worst case: a '*' only ever backtracks to the most recent star.
func globMatch(p, s string) bool {
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(s) {
		if pi < len(p) {
			c := p[pi]
			switch {
			case c == '*':
				starP, starS = pi, si
				pi++
				continue
			case c == '?':
				// '?' matches one UTF-8 character.
				pi++
				si += runeLen(s, si)
				continue
			case c == '\\' && pi+1 < len(p):
				if p[pi+1] == s[si] {
					pi += 2
					si++
					continue
				}
			case c == s[si]:
				pi++
				si++
				continue
			}
		}
		if starP < 0 {
			return false
		}
		starS += runeLen(s, starS)
		pi, si = starP+1, starS
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

func runeLen(s string, i int) int {
	c := s[i]
	switch {
	case c < 0xC0:
		return 1
	case c < 0xE0:
		return min(2, len(s)-i)
	case c < 0xF0:
		return min(3, len(s)-i)
	}
	return min(4, len(s)-i)
}
