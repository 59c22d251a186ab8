"""The service knows the families only through the registry and the family interface (DESIGN.md): no module of
aigc.serving imports a family's own package (aigc.families.diffusion, .lm, ...); those load through the
registry."""

import grimp


def test_the_service_imports_no_family_package():
    graph = grimp.build_graph("aigc", cache_dir=None)
    packages = {module for module in graph.find_children("aigc.families") if graph.find_children(module)}
    reached = [
        f"{importer} -> {imported}"
        for importer in sorted(graph.find_descendants("aigc.serving"))
        for imported in sorted(graph.find_modules_directly_imported_by(importer))
        if any(imported == package or imported.startswith(package + ".") for package in packages)
    ]
    assert packages and not reached, reached
