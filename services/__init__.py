"""services: the network services (one module or package each), the Node and `rsnode`."""

__all__: list[str] = []
