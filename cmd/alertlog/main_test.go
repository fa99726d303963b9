package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A notification as Alertmanager v0.35 sends it (trimmed).
const notification = `{"version":"4","receiver":"page","status":"firing","groupKey":"{}/{severity=\"page\"}:{alertname=\"Service1Availability\"}",
"groupLabels":{"alertname":"Service1Availability"},"commonAnnotations":{"summary":"burning"},
"alerts":[{"status":"firing","labels":{"alertname":"Service1Availability","severity":"page","sloth_id":"failready-service1-availability"},
"annotations":{"summary":"burning","runbook_url":"docs/runbooks/Service1Availability.md"},"startsAt":"2026-11-29T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"abc"}]}`

func TestReceiver(t *testing.T) {
	var logs bytes.Buffer
	r := &receiver{log: slog.New(slog.NewJSONHandler(&logs, nil)), keep: 2}
	srv := httptest.NewServer(r)
	defer srv.Close()

	for range 3 {
		resp, err := http.Post(srv.URL+"/alerts", "application/json", strings.NewReader(notification))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("POST /alerts: %s", resp.Status)
		}
	}
	var line map[string]any
	if err := json.Unmarshal(bytes.SplitN(logs.Bytes(), []byte("\n"), 2)[0], &line); err != nil {
		t.Fatalf("log line: %v\n%s", err, logs.String())
	}
	if line["msg"] != "alert firing" || line["receiver"] != "page" || line["alertname"] != "Service1Availability" || line["severity"] != "page" ||
		line["runbook_url"] != "docs/runbooks/Service1Availability.md" {
		t.Errorf("log line %v", line)
	}

	resp, err := http.Get(srv.URL + "/alerts")
	if err != nil {
		t.Fatal(err)
	}
	var list []Notification
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Receiver != "page" || list[0].Alerts[0].Labels["sloth_id"] != "failready-service1-availability" || list[0].Received.IsZero() {
		t.Errorf("GET /alerts kept %+v; want the last 2", list)
	}

	for _, c := range []struct {
		method, path, body string
		code               int
	}{
		{"POST", "/alerts", "{not json", http.StatusBadRequest},
		{"POST", "/alerts", `{"receiver":"page","alerts":[]}`, http.StatusBadRequest},
		{"POST", "/alerts", `{"receiver":"page","alerts":[` + strings.Repeat(`{},`, maxBody/3) + `{}]}`, http.StatusBadRequest},
		{"DELETE", "/alerts", "", http.StatusMethodNotAllowed},
		{"GET", "/nope", "", http.StatusNotFound},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Error string }
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != c.code || err != nil || e.Error == "" {
			t.Errorf("%s %s %.20q: %s, error %q (%v); want %d with a JSON error", c.method, c.path, c.body, resp.Status, e.Error, err, c.code)
		}
	}
}
