"""Files: uploads (single and chunked, resumable, instant), downloads, thumbnails, access."""
