// Docker's json-file log format: the dev stack can keep each program's
// output the way Docker keeps a container's, so that a log forwarder (the
// collector's filelog receiver) reads the same files here as on a Docker
// host.

package devstack

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unicode/utf8"
)

// maxEntry is the longest text Docker's json-file driver puts in one entry:
// a longer line is split into entries of at most this size (here at a
// character's start), only the last of which ends with "\n" (moby's
// daemon/logger copier, 16 KiB).
const maxEntry = 16 << 10

// jsonFile appends a process's lines to NAME/NAME-json.log under a folder,
// one JSON object per entry: {"log":"text\n","stream":"stdout","time":"…",
// "attrs":{"com.docker.compose.service":"NAME"}}, as Docker writes them for
// compose's services with the logging option labels:
// com.docker.compose.service (so a line the program did not name, a crash
// stack, is still found under its name). A nil *jsonFile writes nothing.
type jsonFile struct {
	mu    sync.Mutex
	f     *os.File
	now   func() time.Time
	attrs map[string]string
}

// ServiceAttr is the json-file attribute that names the program: the
// compose service label, which compose's logging options put in every entry.
const ServiceAttr = "com.docker.compose.service"

func openJSONFile(dir, name string) (*jsonFile, error) {
	if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, name, name+"-json.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &jsonFile{f: f, now: time.Now, attrs: map[string]string{ServiceAttr: name}}, nil
}

// Line appends one line of stream ("stdout" or "stderr"), without its
// newline, as one entry or, past 16 KiB, as several.
func (j *jsonFile) Line(stream, line string) {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	t := j.now().UTC().Format(time.RFC3339Nano)
	for {
		part, last := line, true
		if len(line) > maxEntry {
			// At a character's start: a split rune would be two invalid
			// halves, which JSON would turn into U+FFFD.
			cut := maxEntry
			for cut > 0 && !utf8.RuneStart(line[cut]) {
				cut--
			}
			part, line, last = line[:cut], line[cut:], false
		}
		if last {
			part += "\n"
		}
		b, _ := json.Marshal(struct {
			Log    string            `json:"log"`
			Stream string            `json:"stream"`
			Time   string            `json:"time"`
			Attrs  map[string]string `json:"attrs,omitempty"`
		}{part, stream, t, j.attrs})
		_, _ = j.f.Write(append(b, '\n'))
		if last {
			return
		}
	}
}

// Close closes the file.
func (j *jsonFile) Close() {
	if j != nil {
		j.f.Close()
	}
}
