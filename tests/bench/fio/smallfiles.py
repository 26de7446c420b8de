#!/usr/bin/env python3
"""Small-file job of fio_bench.sh (fio has no "list a directory" engine).

    smallfiles.py create|stat|list DIR COUNT SIZE

One timed phase on the COUNT files f00000 .. in DIR:
  create  mkdir DIR (must not exist), then for each file open(O_CREAT|O_EXCL),
          write SIZE bytes, close;
  stat    lstat() each file by name (and check its size);
  list    scandir(DIR) and lstat() each entry, as `ls -l` does.
fio_bench.sh drops the caches before stat and list (see prep_small_cold).
Prints "files_per_s=N" and "seconds=T"; the time excludes interpreter start.
"""
import os
import sys
import time


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("create", "stat", "list"):
        sys.exit(__doc__)
    phase, directory = sys.argv[1], sys.argv[2]
    count, size = int(sys.argv[3]), int(sys.argv[4])
    names = [os.path.join(directory, "f%05d" % i) for i in range(count)]
    data = os.urandom(size)

    t0 = time.perf_counter()
    if phase == "create":
        os.mkdir(directory)
        for name in names:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                if os.write(fd, data) != size:
                    sys.exit("short write to " + name)
            finally:
                os.close(fd)
    elif phase == "stat":
        for name in names:
            if os.lstat(name).st_size != size:
                sys.exit("wrong size: " + name)
    else:
        seen = 0
        with os.scandir(directory) as it:
            for entry in it:
                entry.stat(follow_symlinks=False)
                seen += 1
        if seen != count:
            sys.exit("listed %d entries, expected %d" % (seen, count))
    seconds = time.perf_counter() - t0
    print("files_per_s=%.1f" % (count / seconds))
    print("seconds=%.4f" % seconds)


if __name__ == "__main__":
    main()
