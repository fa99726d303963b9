package respond_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/failready/failready/internal/requestid"
	"github.com/failready/failready/internal/respond"
)

func TestErrorCarriesRequestID(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req = req.WithContext(requestid.NewContext(req.Context(), "rid-9"))
	rec := httptest.NewRecorder()
	respond.Error(rec, req, http.StatusConflict, "nope")
	if rec.Code != http.StatusConflict || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var b respond.ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Error != "nope" || b.RequestID != "rid-9" {
		t.Fatalf("body %q (%v)", rec.Body.String(), err)
	}
}
