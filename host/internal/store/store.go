// Package store persists Durable Object storage and alarms for the wazero host in one bbolt file: a bucket per
// object id holding that instance's keys and values, and a bucket "\x00alarms" mapping object ids to their
// alarm. Writes are durable (fsync'd) when a call returns. Methods are safe for concurrent use.
package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

var alarmsBucket = []byte("\x00alarms")

// DB is the state of every Durable Object instance of one host.
type DB struct{ db *bolt.DB }

// Alarm is a pending alarm of an object.
type Alarm struct {
	ObjectID string `json:"-"`
	Role     string `json:"role"`
	At       int64  `json:"at"`    // milliseconds since the epoch
	Retry    int    `json:"retry"` // the retryCount handleAlarm will see
}

// KV is one stored entry.
type KV struct{ Key, Value string }

// Open opens (creating) dir/state.db.
func Open(dir string) (*DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, "state.db"), 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("state %s is in use by another process", dir)
		}
		return nil, fmt.Errorf("state: %w", err)
	}
	return &DB{db: db}, nil
}

// Close closes the file.
func (d *DB) Close() error { return d.db.Close() }

// Get returns the value of key in object id.
func (d *DB) Get(id, key string) (value string, ok bool, err error) {
	err = d.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(id)); b != nil {
			if v := b.Get([]byte(key)); v != nil {
				value, ok = string(v), true
			}
		}
		return nil
	})
	return value, ok, err
}

// Put stores entries in object id, atomically.
func (d *DB) Put(id string, entries []KV) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(id))
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := b.Put([]byte(e.Key), []byte(e.Value)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Delete removes keys from object id and returns how many existed.
func (d *DB) Delete(id string, keys []string) (n int, err error) {
	err = d.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(id))
		if b == nil {
			return nil
		}
		for _, k := range keys {
			if b.Get([]byte(k)) != nil {
				n++
				if err := b.Delete([]byte(k)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return n, err
}

// List returns the entries of object id whose keys start with prefix, in key order; limit ≤ 0 is no limit.
func (d *DB) List(id, prefix string, limit int) ([]KV, error) {
	var out []KV
	err := d.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(id))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			out = append(out, KV{string(k), string(v)})
			if limit > 0 && len(out) == limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// DeleteAll removes every key of object id (not its alarm).
func (d *DB) DeleteAll(id string) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte(id)) == nil {
			return nil
		}
		return tx.DeleteBucket([]byte(id))
	})
}

// GetAlarm returns the alarm of object id.
func (d *DB) GetAlarm(id string) (a Alarm, ok bool, err error) {
	err = d.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(alarmsBucket); b != nil {
			if v := b.Get([]byte(id)); v != nil {
				ok = true
				return json.Unmarshal(v, &a)
			}
		}
		return nil
	})
	a.ObjectID = id
	return a, ok, err
}

// SetAlarm replaces the alarm of a.ObjectID.
func (d *DB) SetAlarm(a Alarm) error {
	v, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return d.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(alarmsBucket)
		if err != nil {
			return err
		}
		return b.Put([]byte(a.ObjectID), v)
	})
}

// DeleteAlarm removes the alarm of object id.
func (d *DB) DeleteAlarm(id string) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		if b := tx.Bucket(alarmsBucket); b != nil {
			return b.Delete([]byte(id))
		}
		return nil
	})
}

// Alarms returns every pending alarm.
func (d *DB) Alarms() ([]Alarm, error) {
	var out []Alarm
	err := d.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(alarmsBucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var a Alarm
			if err := json.Unmarshal(v, &a); err != nil {
				return err
			}
			a.ObjectID = string(k)
			out = append(out, a)
			return nil
		})
	})
	return out, err
}
