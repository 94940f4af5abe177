"""feederdao: a DAO-governed local energy market and grid-control plugin for distribution SCADA."""

__version__ = "0.1.0"
