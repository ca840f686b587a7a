"""Configuration: RecBole's Config with the plugin's property files, the key table and its checks."""
