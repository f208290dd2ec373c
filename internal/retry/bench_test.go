package retry

import (
	"encoding/json"
	"strings"
	"testing"
)

// BenchmarkAnswerSizes validates and classifies a typical small answer and a 1 MiB one of many small tokens:
//
//	go test ./internal/retry -run - -bench AnswerSizes

// benchAnswers are a typical small answer (eth_blockNumber) and a 1 MiB eth_getLogs-like answer.
func benchAnswers() (small, large []byte) {
	small = []byte(`{"jsonrpc":"2.0","id":1,"result":"0x1b4"}`)
	var b strings.Builder
	b.WriteString(`{"jsonrpc":"2.0","id":1,"result":[`)
	for i := 0; b.Len() < 1<<20; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"address":"0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f","topics":["0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef","0x000000000000000000000000a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"],"data":"0x` + strings.Repeat("00", 64) + `","blockNumber":"0x12d687","logIndex":"0x1","removed":false}`)
	}
	b.WriteString(`]}`)
	return small, []byte(b.String())
}

var benchID = []json.RawMessage{json.RawMessage(`1`)}

func BenchmarkAnswerSizes(b *testing.B) {
	small, large := benchAnswers()
	for _, c := range []struct {
		name string
		body []byte
	}{{"small", small}, {"1MiB", large}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			for b.Loop() {
				if Answer(c.body, Expect{IDs: benchID}) != OK {
					b.Fatal("not OK")
				}
			}
		})
	}
}
