package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// taskSplit ends every record of tasks.txt (see API.md, "Storage format").
const taskSplit = "TASK_SPLIT"

// seedRecord is task i of n as the original service wrote it: compact JSON, no newline.
func seedRecord(buf []byte, i, n int) []byte {
	buf = append(buf, `{"title":"Task `...)
	buf = strconv.AppendInt(buf, int64(i), 10)
	buf = append(buf, `","text":"Seeded by make bench: task `...)
	buf = strconv.AppendInt(buf, int64(i), 10)
	buf = append(buf, ` of `...)
	buf = strconv.AppendInt(buf, int64(n), 10)
	return append(buf, `."}`...)
}

// seedTasks writes folder/tasks.txt holding n tasks in the original format, each record
// followed by TASK_SPLIT, and syncs it.
func seedTasks(folder string, n int) error {
	if err := os.MkdirAll(folder, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(folder, "tasks.txt"))
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var record []byte
	for i := range n {
		record = append(seedRecord(record[:0], i, n), taskSplit...)
		if _, err := w.Write(record); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("seed %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
