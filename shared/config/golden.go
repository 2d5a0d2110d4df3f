package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
)

// CheckLambdaEnvGolden compares the Lambda-mode variable names with the JSON array at path,
// or rewrites the file when update is set. The infrastructure checker reads these files to
// make sure the template sets exactly the variables the code reads.
func CheckLambdaEnvGolden(path string, vars []Var, update bool) error {
	want, err := json.MarshalIndent(LambdaNames(vars), "", "  ")
	if err != nil {
		return err
	}
	want = append(want, '\n')
	if update {
		return os.WriteFile(path, want, 0o644)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s (rerun the test with -update): %w", path, err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%s is out of date (rerun the test with -update and update infra/template.yaml):\n got %s\nwant %s", path, got, want)
	}
	return nil
}
