"""HTTP infrastructure shared by the reporter portal (portal.web) and the workspace
(investigator.web): security headers, CSRF and cross-site refusal, sessions, error pages,
locale selection, templating and the streaming multipart reader. It imports neither web
layer, so the two stay independent of each other (import-linter contract)."""
