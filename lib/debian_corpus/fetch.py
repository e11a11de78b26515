"""Debian packages fetched with ``apt-get download`` (no root, nothing installed) and unpacked selectively.

A package is downloaded once into the cache; ``unpack`` streams ``dpkg-deb --fsys-tarfile`` through Python's tarfile
and writes only the members a source reads, with a marker, so later runs read the unpacked files without the .deb.
"""
import glob
import os
import shutil
import subprocess
import sys
import tarfile

NOT_DEBIAN = ("{tool} is missing: the corpus builder downloads and unpacks Debian packages and needs apt-get and "
              "dpkg-deb, which Debian and Ubuntu have. On another system, build the corpus in a Debian container "
              "(e.g. 'docker run -it -v $PWD:/repo debian:bookworm'), or pass --deb-dir with .deb files you "
              "downloaded elsewhere.")
DISK_MARGIN = 200 * 2 ** 20  # bytes kept free besides the downloads
BATCH = 25  # packages per apt-get call
DONE_MARKER = ".unpacked"
MAX_MEMBER = 64 * 2 ** 20  # bytes: a translation file (.mo, .po, a page) larger than this is skipped
MAX_ARCHIVE_MEMBER = 512 * 2 ** 20  # bytes: the same for a zip archive of translations (Mozilla's omni.ja, .xpi)
ARCHIVE_SUFFIXES = (".ja", ".xpi")


def require_tool(tool):
    """Raise a clear RuntimeError unless ``tool`` is on PATH."""
    if shutil.which(tool) is None:
        raise RuntimeError(NOT_DEBIAN.format(tool=tool))


def deb_path(package, deb_dir):
    """The cached .deb of ``package`` in ``deb_dir`` (the newest version when several), or None."""
    found = sorted(glob.glob(os.path.join(glob.escape(deb_dir), f"{package}_*.deb")))
    return found[-1] if found else None


def unpacked_dir(package, cache_dir):
    """Where the members of ``package`` that the sources read are unpacked."""
    return os.path.join(cache_dir, "unpacked", package)


def is_unpacked(package, cache_dir, wanted=None):
    """Whether ``package`` was unpacked completely by an earlier run (with the same ``wanted`` pattern, if given)."""
    marker = os.path.join(unpacked_dir(package, cache_dir), DONE_MARKER)
    if not os.path.exists(marker):
        return False
    with open(marker, encoding="utf-8") as handle:
        return wanted is None or handle.read().splitlines()[1:2] == [wanted.pattern]


def download_sizes(packages):
    """Dict package -> bytes to download, from ``apt-get download --print-uris`` (no download); packages that apt
    does not know are left out."""
    sizes = {}
    for start in range(0, len(packages), 200):
        batch = packages[start:start + 200]
        result = subprocess.run(["apt-get", "download", "--print-uris", *batch], capture_output=True, text=True)
        if result.returncode != 0:  # an unknown package fails the whole call: ask one at a time
            if len(batch) == 1:
                continue
            for package in batch:
                sizes.update(download_sizes([package]))
            continue
        for line in result.stdout.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[1].endswith(".deb"):
                sizes[parts[1].split("_", 1)[0]] = int(parts[2])
    return sizes


def check_disk(folder, needed):
    """Raise a clear OSError unless ``folder`` has ``needed`` bytes free besides a margin."""
    free = shutil.disk_usage(folder).free
    if free < needed + DISK_MARGIN:
        raise OSError(f"the disk holding {folder} has {free / 2 ** 30:.1f} GiB free but the packages need "
                      f"{(needed + DISK_MARGIN) / 2 ** 30:.1f} GiB: free some space, give another --cache-dir, or "
                      "build fewer sources (--only KIND)")


def _apt_download(packages, deb_dir):
    """Run apt-get download in ``deb_dir``; returns the packages it could not fetch."""
    result = subprocess.run(["apt-get", "download", *packages], cwd=deb_dir, capture_output=True, text=True)
    if result.returncode == 0:
        return []
    if len(packages) == 1:
        return list(packages)
    missing = []
    for package in packages:
        if deb_path(package, deb_dir) is None:
            missing += _apt_download([package], deb_dir)
    return missing


def download(packages, deb_dir, progress=None):
    """Fetch the .deb of every package not yet in ``deb_dir``; returns the packages apt-get could not fetch.

    progress: a callable given the number of packages done after each batch (a tqdm's update), or None.
    """
    require_tool("apt-get")
    os.makedirs(deb_dir, exist_ok=True)
    wanted = [package for package in packages if deb_path(package, deb_dir) is None]
    if progress:
        progress(len(packages) - len(wanted))
    if not wanted:
        return []
    check_disk(deb_dir, sum(download_sizes(wanted).values()))
    missing = []
    for start in range(0, len(wanted), BATCH):
        batch = wanted[start:start + BATCH]
        missing += _apt_download(batch, deb_dir)
        if progress:
            progress(len(batch))
    return missing


def unpack(deb, destination, wanted):
    """Write the regular files of ``deb`` whose path matches ``wanted`` (a compiled regex, searched in paths
    without the leading './') under ``destination``; symbolic links that match are written as text files holding
    their target, with the suffix '.link'. Marks the folder complete; returns the paths written."""
    require_tool("dpkg-deb")
    shutil.rmtree(destination, ignore_errors=True)  # what a broken earlier run left
    os.makedirs(destination)
    written = []
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as process:
        with tarfile.open(fileobj=process.stdout, mode="r|*") as archive:
            for member in archive:
                name = os.path.normpath(member.name.lstrip("./"))
                if name.startswith("..") or not wanted.search(name):
                    continue
                if member.issym():
                    target = os.path.join(destination, name + ".link")
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with open(target, "wb") as handle:
                        handle.write(member.linkname.encode())
                elif member.isfile():
                    limit = MAX_ARCHIVE_MEMBER if name.endswith(ARCHIVE_SUFFIXES) else MAX_MEMBER
                    if member.size > limit:
                        print(f"warning: {deb}: {name} is skipped, {member.size / 2 ** 20:.0f} MiB is more than "
                              f"the {limit // 2 ** 20} MiB such a file may have", file=sys.stderr)
                        continue
                    target = os.path.join(destination, name)
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with open(target, "wb") as handle:  # streamed: memory stays bounded whatever the size
                        shutil.copyfileobj(archive.extractfile(member), handle, 2 ** 20)
                else:
                    continue
                written.append(name)
        while process.stdout.read(2 ** 20):  # the rest of the archive, drained in chunks
            pass
        error = process.stderr.read().decode(errors="replace").strip()
    if process.returncode != 0:
        raise RuntimeError(f"dpkg-deb could not unpack {deb}: {error or 'exit status ' + str(process.returncode)}; "
                           "delete the file and run again to download it anew")
    with open(os.path.join(destination, DONE_MARKER), "w", encoding="utf-8") as handle:
        handle.write(f"{os.path.basename(deb)}\n{wanted.pattern}\n")
    return written
