"""SonicForge core: settings and the lakehouse table contracts.

Every other package may import this one; it imports none of them.
"""

__version__ = "0.1.0"
