"""The network crawls: GitHub and GitLab listed through their APIs, repositories fetched as archives."""
