package main

import (
	"database/sql"
	"fmt"
	"os"
	"strings"
	"time"

	_ "modernc.org/sqlite"
)

func main() {
	db, err := sql.Open("sqlite", os.Args[1]+"?_pragma=query_only(1)")
	if err != nil {
		panic(err)
	}
	var args []any
	for _, a := range strings.Split(os.Getenv("ARGS"), ",") {
		if a == "" {
			continue
		}
		var n int64
		if _, err := fmt.Sscan(a, &n); err == nil {
			args = append(args, n)
		} else {
			args = append(args, a)
		}
	}
	for _, q := range os.Args[2:] {
		rows, err := db.Query("EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			fmt.Println("ERR", err)
			continue
		}
		for rows.Next() {
			var id, parent, notused int
			var detail string
			rows.Scan(&id, &parent, &notused, &detail)
			fmt.Println("  ", id, parent, detail)
		}
		rows.Close()
		t := time.Now()
		rows, err = db.Query(q, args...)
		if err != nil {
			fmt.Println("ERR", err)
			continue
		}
		n := 0
		for rows.Next() {
			n++
		}
		rows.Close()
		fmt.Printf("%d rows in %v: %s\n\n", n, time.Since(t), strings.Join(strings.Fields(q), " ")[:min(len(q), 100)])
	}
}
