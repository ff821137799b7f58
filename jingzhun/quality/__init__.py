"""The quality gate: one Great Expectations suite per source built from the contract (suites), custom
expectations (custom), the gate that runs them and renders the Data Docs (gate)."""
