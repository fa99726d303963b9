package main

import (
	"context"
	"encoding/csv"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"syscall"

	"github.com/failready/failready/app/user"
	"github.com/failready/failready/internal/respond"
)

// exportLimit bounds GET /users/export.
const exportLimit = 10000

// exporter is what the export handler needs of the store.
type exporter interface {
	ExportUsers(ctx context.Context, limit int, each func(user.User) error) error
}

// handleExport spools the users as CSV to a temporary file in dir, then
// sends the file: the database connection is released as soon as the rows
// are read, whatever the speed of the client. It is also the service's one
// use of its disk, and a full disk is a clear 507, not a 500 or a truncated
// download; it recovers by itself when space returns.
func handleExport(s exporter, dir string, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.CreateTemp(dir, "export-*.csv")
		if err != nil {
			spoolError(w, r, logger, err)
			return
		}
		defer os.Remove(f.Name())
		defer f.Close()

		cw := csv.NewWriter(f)
		_ = cw.Write([]string{"id", "first_name", "last_name"})
		err = s.ExportUsers(r.Context(), exportLimit, func(u user.User) error {
			return cw.Write([]string{strconv.FormatInt(u.ID, 10), u.FirstName, u.LastName})
		})
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) || errors.Is(err, syscall.ENOSPC) {
				spoolError(w, r, logger, err)
			} else {
				storeError(w, r, err)
			}
			return
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			spoolError(w, r, logger, err)
			return
		}
		if err := f.Sync(); err != nil {
			spoolError(w, r, logger, err)
			return
		}
		size, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			spoolError(w, r, logger, err)
			return
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			spoolError(w, r, logger, err)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		_, _ = io.Copy(w, f)
	})
}

// spoolError answers a failure of the spool directory: 507 Insufficient
// Storage when the disk is full, 500 otherwise.
func spoolError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		logger.ErrorContext(r.Context(), "export spool full", "error", err.Error())
		respond.Error(w, r, http.StatusInsufficientStorage, "export failed: no space left on the spool volume; retry when space is freed")
		return
	}
	logger.ErrorContext(r.Context(), "export spool failed", "error", err.Error())
	respond.Error(w, r, http.StatusInternalServerError, "export failed: spool error")
}
