package rc

import (
	"errors"
	"testing"

	"github.com/gopcua/opcua/ua"
)

func TestUserTokenPolicyChoice(t *testing.T) {
	endpoints := func(tokens ...*ua.UserTokenPolicy) []*ua.EndpointDescription {
		return []*ua.EndpointDescription{{
			SecurityPolicyURI:  ua.SecurityPolicyURINone,
			SecurityMode:       ua.MessageSecurityModeNone,
			UserIdentityTokens: tokens,
		}}
	}
	plainUser := &ua.UserTokenPolicy{PolicyID: "user_none", TokenType: ua.UserTokenTypeUserName, SecurityPolicyURI: ua.SecurityPolicyURINone}
	anon := &ua.UserTokenPolicy{PolicyID: "anon", TokenType: ua.UserTokenTypeAnonymous}
	nonce := make([]byte, nonceLength)
	client := func(cfg ClientConfig) *Client { return &Client{cfg: &cfg, serverURI: "urn:x"} }
	user := UserNameIdentity("operator", NewSecret("pw"))

	if _, _, err := client(ClientConfig{Identity: user}).userToken(nil, nil, nonce, endpoints(plainUser)); !errors.Is(err, ErrInsecurePassword) {
		t.Errorf("plain password on a None channel: %v, want ErrInsecurePassword", err)
	}
	tok, _, err := client(ClientConfig{Identity: user, AllowPlaintextPassword: true}).userToken(nil, nil, nonce, endpoints(plainUser))
	if ut, ok := tok.(*ua.UserNameIdentityToken); err != nil || !ok || string(ut.Password) != "pw" || ut.PolicyID != "user_none" {
		t.Errorf("allowed plain password: %#v, %v", tok, err)
	}
	encrypted := ClientConfig{Identity: user, SecurityPolicy: SecurityPolicyBasic256Sha256, SecurityMode: SecurityModeSignAndEncrypt}
	if _, _, err := client(encrypted).userToken(nil, nil, nonce, endpoints(plainUser)); err != nil {
		t.Errorf("plain password inside SignAndEncrypt: %v", err)
	}
	if _, _, err := client(ClientConfig{Identity: user}).userToken(nil, nil, nonce, endpoints(anon)); !errors.Is(err, ErrNoUserTokenPolicy) {
		t.Errorf("no UserName policy: %v, want ErrNoUserTokenPolicy", err)
	}
	if _, _, err := client(ClientConfig{}).userToken(nil, nil, nonce, endpoints(plainUser)); !errors.Is(err, ErrNoUserTokenPolicy) {
		t.Errorf("no Anonymous policy: %v, want ErrNoUserTokenPolicy", err)
	}
	tok, _, err = client(ClientConfig{}).userToken(nil, nil, nonce, nil)
	if at, ok := tok.(*ua.AnonymousIdentityToken); err != nil || !ok || at.PolicyID != "Anonymous" {
		t.Errorf("anonymous without endpoints: %#v, %v", tok, err)
	}
	tok, _, err = client(ClientConfig{}).userToken(nil, nil, nonce, endpoints(plainUser, anon))
	if at, ok := tok.(*ua.AnonymousIdentityToken); err != nil || !ok || at.PolicyID != "anon" {
		t.Errorf("anonymous: %#v, %v", tok, err)
	}
}
