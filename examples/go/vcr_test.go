// A cassette per test with Go's testing package and llm-vcr sessions (standard library only).
//
// Run the tests through llm-vcr, which starts the proxy and sets HTTPS_PROXY, HTTP_PROXY and
// SSL_CERT_FILE for them:
//
//	llm-vcr run --dir testdata/cassettes -- go test -count=1 ./...
//
// (or against a running `llm-vcr serve`: eval "$(llm-vcr env)"; go test -count=1 ./...).
// Each test opens a session named after t.Name() through the control API, sends its requests
// with the X-VCR-Session header, and closes the session when it ends; a request that found no
// recorded answer fails the test with the proxy's explanation.
package recipe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// control is llm-vcr's control API: a reserved host only the proxy answers.
const control = "http://llm-vcr.invalid/v1/sessions"

// report is the part of a session's report this recipe reads.
type report struct {
	Cassettes map[string]struct {
		Missed []struct{ Request, Reason string } `json:"missed"`
	} `json:"cassettes"`
}

// sessionHeader adds X-VCR-Session to every request it sends.
type sessionHeader struct{ id string }

func (s sessionHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-VCR-Session", s.id)
	return http.DefaultTransport.RoundTrip(r)
}

// Cassette opens the test's session on cassette "go/<test name>" and returns an http.Client
// whose requests belong to it. The session is closed when the test ends.
func Cassette(t *testing.T) *http.Client {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"cassette": "go/" + t.Name()})
	resp, err := http.Post(control, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("llm-vcr: cannot open a session (is the proxy running? llm-vcr run -- go test): %v", err)
	}
	defer resp.Body.Close()
	var opened struct{ Session string }
	if err := json.NewDecoder(resp.Body).Decode(&opened); err != nil || resp.StatusCode != 201 {
		t.Fatalf("llm-vcr: opening a session answered %d", resp.StatusCode)
	}
	t.Cleanup(func() { closeSession(t, opened.Session) })
	return &http.Client{Transport: sessionHeader{opened.Session}}
}

func closeSession(t *testing.T, id string) {
	req, _ := http.NewRequest(http.MethodDelete, control+"/"+id, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("llm-vcr: cannot close session %s: %v", id, err)
		return
	}
	defer resp.Body.Close()
	var r report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Errorf("llm-vcr: session %s: unreadable report: %v", id, err)
		return
	}
	for name, cassette := range r.Cassettes {
		for _, miss := range cassette.Missed {
			t.Errorf("llm-vcr: no recorded answer in cassette %q: %s: %s", name, miss.Request, miss.Reason)
		}
	}
}

// ask sends one chat completion and returns the answer's text.
func ask(t *testing.T, client *http.Client, prompt string) string {
	t.Helper()
	body := fmt.Sprintf(`{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": %q}]}`, prompt)
	req, _ := http.NewRequest(http.MethodPost, "https://api.openai.com/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-test-not-a-real-key")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, raw)
	}
	var answer struct {
		Choices []struct{ Message struct{ Content string } }
	}
	if err := json.Unmarshal(raw, &answer); err != nil || len(answer.Choices) == 0 {
		t.Fatalf("unexpected answer: %s", raw)
	}
	return answer.Choices[0].Message.Content
}

func TestGreeting(t *testing.T) {
	client := Cassette(t)
	if got := ask(t, client, "Hello from Go"); got != "Echo: Hello from Go" {
		t.Errorf("got %q", got)
	}
}

func TestFarewell(t *testing.T) {
	client := Cassette(t)
	if got := ask(t, client, "Goodbye from Go"); got != "Echo: Goodbye from Go" {
		t.Errorf("got %q", got)
	}
}
