"""The Streamlit command center (issue 3 builds it out; this is the first page)."""
