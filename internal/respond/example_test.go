package respond_test

import (
	"fmt"
	"net/http/httptest"

	"github.com/failready/failready/internal/requestid"
	"github.com/failready/failready/internal/respond"
)

// Every error is the same JSON shape, with the request ID to grep for.
func ExampleError() {
	req := httptest.NewRequest("GET", "/users/9", nil)
	req = req.WithContext(requestid.NewContext(req.Context(), "req-1"))
	rec := httptest.NewRecorder()
	respond.Error(rec, req, 404, "user not found")
	fmt.Print(rec.Code, " ", rec.Header().Get("Content-Type"), " ", rec.Body.String())
	// Output:
	// 404 application/json {"error":"user not found","request_id":"req-1"}
}
