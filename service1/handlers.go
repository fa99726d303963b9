package main

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/failready/failready/app/user"
	"github.com/failready/failready/internal/idempotency"
	"github.com/failready/failready/internal/jsonbody"
	"github.com/failready/failready/internal/respond"
)

// service2 is what the handlers need of the service2 client.
type service2 interface {
	ListUsers(ctx context.Context) ([]user.User, error)
	GetUser(ctx context.Context, id int64) (user.User, error)
	// CreateUser creates a user once per idempotency key, however often
	// it is called with that key.
	CreateUser(ctx context.Context, n user.New, idempotencyKey string) (user.User, error)
	Ready(ctx context.Context, timeout time.Duration) error
}

// handleIndex is the talk's "/": the users, fetched from service2.
func handleIndex(s2 service2) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		users, err := s2.ListUsers(r.Context())
		if err != nil {
			service2Error(w, r, err)
			return
		}
		respond.JSON(w, http.StatusOK, map[string]any{"users": users})
	})
}

func handleGetUser(s2 service2) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Rejected here, bad input costs no hop.
		id, err := user.ParseID(chi.URLParam(r, "id"))
		if err != nil {
			respond.Error(w, r, http.StatusBadRequest, err.Error())
			return
		}
		u, err := s2.GetUser(r.Context(), id)
		if err != nil {
			service2Error(w, r, err)
			return
		}
		respond.JSON(w, http.StatusOK, u)
	})
}

// handleCreateUser creates a user. A client that will retry sends an
// Idempotency-Key, the same on every retry: service1 passes it on, so that
// a retry after a lost answer (a timeout at the client) finds the user the
// first attempt made instead of making a second, and the same key with a
// different body gets service2's 409. Without one, service1 makes a key of
// its own, for its own retries to service2.
func handleCreateUser(s2 service2) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(idempotency.Header)
		if key != "" && !idempotency.Valid(key) {
			respond.Error(w, r, http.StatusBadRequest, idempotency.Rule)
			return
		}
		if key == "" {
			key = idempotency.NewKey()
		}
		var n user.New
		if !jsonbody.DecodeValid(w, r, &n, respond.Error) {
			return
		}
		u, err := s2.CreateUser(r.Context(), n, key)
		if err != nil {
			service2Error(w, r, err)
			return
		}
		w.Header().Set("Location", "/users/"+strconv.FormatInt(u.ID, 10))
		respond.JSON(w, http.StatusCreated, u)
	})
}

// handleHoneypot panics on purpose: the talk's error demo. The recoverer
// logs the panic with its stack and the request ID and answers 500 JSON; the
// process keeps serving.
func handleHoneypot() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("honeypot: this endpoint fails on purpose")
	})
}

// service2Error maps a failed call to service2 to HTTP: the one place
// service1 does it. service2's answers to bad input pass through as they are;
// its faults become 502, and its absence 503 or 504.
func service2Error(w http.ResponseWriter, r *http.Request, err error) {
	var ue *upstreamError
	var oe *openError
	switch {
	case errors.As(err, &oe):
		w.Header().Set("Retry-After", strconv.Itoa(int(oe.RetryAfter.Seconds())))
		respond.Error(w, r, http.StatusServiceUnavailable, "service2 unavailable: circuit breaker open, failing fast")
	case errors.As(err, &ue):
		switch {
		case ue.Status >= 400 && ue.Status < 500:
			respond.Error(w, r, ue.Status, ue.Msg)
		case ue.Status == http.StatusServiceUnavailable, ue.Status == http.StatusGatewayTimeout:
			respond.Error(w, r, ue.Status, "service2: "+ue.Msg)
		default:
			respond.Error(w, r, http.StatusBadGateway, "service2 failed")
		}
	case errors.Is(err, errTimeout):
		respond.Error(w, r, http.StatusGatewayTimeout, "service2 timed out")
	case errors.Is(err, context.DeadlineExceeded):
		respond.Error(w, r, http.StatusGatewayTimeout, "request deadline exceeded")
	case errors.Is(err, context.Canceled):
		respond.Error(w, r, 499, "request cancelled by the client")
	case errors.Is(err, errUnavailable):
		respond.Error(w, r, http.StatusServiceUnavailable, "service2 unavailable")
	default:
		respond.Error(w, r, http.StatusBadGateway, "service2 failed")
	}
}
