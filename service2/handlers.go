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

// users is what the handlers need of the store.
type users interface {
	ListUsers(ctx context.Context) ([]user.User, error)
	GetUser(ctx context.Context, id int64) (user.User, error)
	CreateUser(ctx context.Context, n user.New, idempotencyKey string) (user.User, error)
	ExportUsers(ctx context.Context, limit int, each func(user.User) error) error
	Ping(ctx context.Context, timeout time.Duration) error
}

func handleListUsers(s users) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list, err := s.ListUsers(r.Context())
		if err != nil {
			storeError(w, r, err)
			return
		}
		respond.JSON(w, http.StatusOK, map[string]any{"users": list})
	})
}

func handleGetUser(s users) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := user.ParseID(chi.URLParam(r, "id"))
		if err != nil {
			respond.Error(w, r, http.StatusBadRequest, err.Error())
			return
		}
		u, err := s.GetUser(r.Context(), id)
		if err != nil {
			storeError(w, r, err)
			return
		}
		respond.JSON(w, http.StatusOK, u)
	})
}

func handleCreateUser(s users) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(idempotency.Header)
		if key != "" && !idempotency.Valid(key) {
			respond.Error(w, r, http.StatusBadRequest, idempotency.Rule)
			return
		}
		var n user.New
		if !jsonbody.DecodeValid(w, r, &n, respond.Error) {
			return
		}
		u, err := s.CreateUser(r.Context(), n, key)
		if err != nil {
			storeError(w, r, err)
			return
		}
		w.Header().Set("Location", "/users/"+strconv.FormatInt(u.ID, 10))
		respond.JSON(w, http.StatusCreated, u)
	})
}

// storeError maps a store error to HTTP: the one place service2 does it.
func storeError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errNotFound):
		respond.Error(w, r, http.StatusNotFound, "user not found")
	case errors.Is(err, errKeyReused):
		respond.Error(w, r, http.StatusConflict, errKeyReused.Error())
	case errors.Is(err, errUnavailable):
		respond.Error(w, r, http.StatusServiceUnavailable, "database unavailable")
	case errors.Is(err, context.DeadlineExceeded):
		respond.Error(w, r, http.StatusGatewayTimeout, "database timeout")
	case errors.Is(err, context.Canceled):
		// The caller is gone; 499 (nginx's "client closed request") keeps
		// these apart from real failures in logs and metrics.
		respond.Error(w, r, 499, "request cancelled by the client")
	default:
		respond.Error(w, r, http.StatusInternalServerError, "internal error")
	}
}
