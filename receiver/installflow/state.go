package installflow

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The state cookie binds an install to the browser that started it. /slack/install draws a
// random state, puts it in the Add to Slack link and in a cookie; /slack/oauth_redirect
// accepts Slack's redirect only if it carries the same state as the cookie, the cookie's
// signature is good and it is younger than StateLifetime. A third party can therefore not make
// a victim's browser finish an install it started (login CSRF on the install), and a state is
// good for one redirect only (States).
//
// The cookie's value is <state>.<issued unix seconds>.<signature>, the signature an
// HMAC-SHA256 over the state and the time under a key derived from the app's client secret:
// HMAC-SHA256(client secret, KeyLabel). Only someone who knows the client secret can sign a
// cookie, which already lets them act as the app; no second secret to provision or rotate.
// Regenerating the client secret invalidates the cookies of installs under way (they start
// again from the install page).

// CookieName is the state cookie's name.
const CookieName = "slackrelay_install_state"

// StateLifetime is how long an install may take from the install page to Slack's redirect.
const StateLifetime = 10 * time.Minute

// KeyLabel is the fixed label the cookie's signing key is derived from the client secret with.
const KeyLabel = "slackrelay install state cookie v1"

// clockSkew is how far in the future a cookie's time may be (Lambda instances' clocks differ
// by far less).
const clockSkew = time.Minute

// The reasons a redirect's state is refused, matched with errors.Is.
var (
	ErrNoCookie      = errors.New("installflow: no install cookie")
	ErrBadSignature  = errors.New("installflow: the install cookie is not ours (bad signature or malformed)")
	ErrExpired       = errors.New("installflow: the install cookie has expired")
	ErrStateMismatch = errors.New("installflow: the state does not match the install cookie")
)

// stateKey derives the cookie's signing key from the client secret.
func stateKey(clientSecret string) []byte {
	m := hmac.New(sha256.New, []byte(clientSecret))
	m.Write([]byte(KeyLabel))
	return m.Sum(nil)
}

func signState(key []byte, state, issued string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(state))
	m.Write([]byte{0})
	m.Write([]byte(issued))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// newState draws a state: 32 random bytes, base64url.
func newState() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// cookieValue is the signed cookie value for state issued at now.
func cookieValue(key []byte, state string, now time.Time) string {
	issued := strconv.FormatInt(now.Unix(), 10)
	return state + "." + issued + "." + signState(key, state, issued)
}

// checkState verifies the cookie's value (signature, age) and that it holds state. Every
// comparison of secret-derived bytes is constant-time.
func checkState(key []byte, value, state string, now time.Time) error {
	if value == "" {
		return ErrNoCookie
	}
	parts := strings.Split(value, ".")
	if len(parts) != 3 {
		return ErrBadSignature
	}
	cState, issued, sig := parts[0], parts[1], parts[2]
	if !hmac.Equal([]byte(sig), []byte(signState(key, cState, issued))) {
		return ErrBadSignature
	}
	secs, err := strconv.ParseInt(issued, 10, 64)
	if err != nil {
		return ErrBadSignature
	}
	at := time.Unix(secs, 0)
	if now.Sub(at) > StateLifetime || at.Sub(now) > clockSkew {
		return ErrExpired
	}
	if state == "" || subtle.ConstantTimeCompare([]byte(cState), []byte(state)) != 1 {
		return ErrStateMismatch
	}
	return nil
}

// stateCookie is the Set-Cookie value of the state cookie: HttpOnly, SameSite=Lax (sent on
// Slack's top-level redirect back, not on cross-site subrequests), Secure unless the pages are
// served over plain http (a local run on 127.0.0.1), and sent only to the redirect's path.
// maxAge 0 clears it.
func stateCookie(value, path string, secure bool, maxAge time.Duration) string {
	c := &http.Cookie{Name: CookieName, Value: value, Path: path, HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode}
	if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
	} else {
		c.MaxAge = -1 // Max-Age=0: delete now
	}
	return c.String()
}

// cookieFrom finds the state cookie among name=value pairs.
func cookieFrom(cookies []string) string {
	for _, c := range cookies {
		for _, part := range strings.Split(c, ";") {
			name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
			if ok && name == CookieName {
				return value
			}
		}
	}
	return ""
}
