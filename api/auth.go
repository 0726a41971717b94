package api

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zkml/zkml/internal/store"
)

// Keys are "zk_" followed by the URL-safe base64 of 32 random bytes. Only the hex
// SHA-256 of the whole string is stored, so a database leak reveals no usable key.
const keyPrefix = "zk_"

// NewKey returns a fresh API key.
func NewKey() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return keyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// HashKey is the stored form of key.
func HashKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

func newWebhookSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return "whsec_" + hex.EncodeToString(b[:])
}

// principal is who made a request.
type principal struct {
	keyID string // empty for the admin
	admin bool
}

type ctxKey struct{}

func principalFrom(ctx context.Context) principal {
	p, _ := ctx.Value(ctxKey{}).(principal)
	return p
}

// presentedKey reads "Authorization: Bearer <key>" or "X-API-Key: <key>".
func presentedKey(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if k, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(k)
		}
		return ""
	}
	return strings.TrimSpace(r.Header.Get("X-API-Key"))
}

var errUnauthorized = errorf(KindUnauthorized, "unauthorized", "missing or invalid API key")

// authenticate resolves the request's key. The admin key is compared in constant time
// against its hash; tenant keys are looked up by hash.
func (s *Server) authenticate(r *http.Request) (principal, error) {
	key := presentedKey(r)
	if key == "" {
		return principal{}, errUnauthorized
	}
	h := HashKey(key)
	if s.adminHash != "" && subtle.ConstantTimeCompare([]byte(h), []byte(s.adminHash)) == 1 {
		return principal{admin: true}, nil
	}
	k, err := s.store.APIKeyByHash(r.Context(), h)
	if errors.Is(err, store.ErrNotFound) {
		return principal{}, errUnauthorized
	}
	if err != nil {
		return principal{}, err
	}
	return principal{keyID: k.ID}, nil
}

// tenant wraps handlers for API-key holders; admin wraps key management.
func (s *Server) tenant(h handlerFunc) http.HandlerFunc {
	return s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.authenticate(r)
		if err != nil {
			return err
		}
		if p.admin {
			return errorf(KindForbidden, "forbidden", "the admin key manages keys only; use a tenant key")
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, p)))
	})
}

func (s *Server) admin(h handlerFunc) http.HandlerFunc {
	return s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.authenticate(r)
		if err != nil {
			return err
		}
		if !p.admin {
			return errorf(KindForbidden, "forbidden", "key management needs the admin key")
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, p)))
	})
}

// Webhook signatures follow the Stripe scheme: header
// "Zkml-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>".
const SignatureHeader = "Zkml-Signature"

// SignWebhook returns the signature header value for body sent at t.
func SignWebhook(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// VerifyWebhook checks a signature header against body, rejecting signatures older
// than tolerance (replay protection).
func VerifyWebhook(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for _, kv := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook signature: bad timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("webhook signature: timestamp outside tolerance")
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return fmt.Errorf("webhook signature: no matching signature")
}
