"""The PostgreSQL engine: binary discovery and throwaway clusters."""
