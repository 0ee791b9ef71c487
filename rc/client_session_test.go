package rc

import (
	"bytes"
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

// TestDetach checks that what the session keeps from a response shares no
// bytes with the buffer the response was decoded from: gopcua decodes
// ByteStrings and String/ByteString NodeIds as slices of it.
func TestDetach(t *testing.T) {
	res := &ua.CreateSessionResponse{
		ResponseHeader:      &ua.ResponseHeader{ServiceDiagnostics: &ua.DiagnosticInfo{}, AdditionalHeader: ua.NewExtensionObject(nil)},
		SessionID:           ua.NewStringNodeID(1, "session-1"),
		AuthenticationToken: ua.NewByteStringNodeID(1, []byte{1, 2, 3, 4}),
		ServerNonce:         bytes.Repeat([]byte{7}, 32),
		ServerEndpoints: []*ua.EndpointDescription{{EndpointURL: "opc.tcp://plc:4840", ServerCertificate: []byte{9, 9, 9},
			Server: &ua.ApplicationDescription{ApplicationName: ua.NewLocalizedText("plc")}}},
		ServerSignature: &ua.SignatureData{},
	}
	buf, err := ua.Encode(res)
	if err != nil {
		t.Fatal(err)
	}
	got := new(ua.CreateSessionResponse)
	if _, err := ua.Decode(buf, got); err != nil {
		t.Fatal(err)
	}
	id, token := detachNodeID(got.SessionID), detachNodeID(got.AuthenticationToken)
	eps := detachEndpoints(got.ServerEndpoints)
	clear(buf) // what the next chunk would do to a shared buffer
	if got.SessionID.StringID() == "session-1" {
		t.Fatal("the decoded response does not alias its buffer: the test proves nothing")
	}
	if id.String() != "ns=1;s=session-1" || !token.Equal(ua.NewByteStringNodeID(1, []byte{1, 2, 3, 4})) ||
		len(eps) != 1 || !bytes.Equal(eps[0].ServerCertificate, []byte{9, 9, 9}) || eps[0].EndpointURL != "opc.tcp://plc:4840" {
		t.Errorf("detached copies changed with the buffer: id %v token %v endpoints %+v", id, token, eps)
	}
	if n := ua.NewNumericNodeID(0, 5); detachNodeID(n) != n || detachNodeID(nil) != nil || detachEndpoints(nil) != nil {
		t.Error("numeric and nil values are returned as they are")
	}
}
