package intake

import (
	"context"
	"errors"

	"github.com/slackrelay/slackrelay/shared/slackverify"
)

func (h *Handler) verify(ctx context.Context, r *Request, ts string) (int, string, error) {
	sig := r.Header(slackverify.HeaderSignature)
	// Unsigned, stale or malformed requests are refused before the secret is looked up, so
	// they never cost an SSM call.
	if err := h.Verifier.CheckHeaders(ts, sig); err != nil {
		return 401, reasonSignature, err
	}
	secret, err := h.Secrets.Get(ctx, SecretKey)
	if err != nil {
		return 503, reasonSecret, err
	}
	err = h.Verifier.Verify([]byte(secret), ts, sig, r.Body)
	if errors.Is(err, slackverify.ErrBadSignature) {
		// The secret may have been rotated: reload it (at most once a minute) and try again.
		if refreshed, rerr := h.Secrets.ForceRefresh(ctx); rerr == nil && refreshed {
			if secret, err2 := h.Secrets.Get(ctx, SecretKey); err2 == nil {
				err = h.Verifier.Verify([]byte(secret), ts, sig, r.Body)
			}
		}
	}
	if err != nil {
		return 401, reasonSignature, err
	}
	return 0, "", nil
}

var (
	dataTypeString = "String"
	dataTypeNumber = "Number"
)
