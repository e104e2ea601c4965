#!/usr/bin/env python3
# Functions over 80 lines in tools/ (the CLI only translates flags into library
# structs; a long function there is workflow that belongs in the library).
# Usage: python3 tools/function_lengths.py   (from the repository root; prints nothing when none)
import re,sys,glob
for f in sorted(glob.glob('tools/*.cpp')+glob.glob('tools/*.h')):
    lines=open(f).read().split('\n')
    i=0
    while i<len(lines):
        l=lines[i]
        # function start: line at column 0 (or 2 inside class) ending with '{' and containing '('
        if re.match(r'^(  )?[A-Za-z].*\)( const)?( override)? \{$',l) or re.match(r'^(  )?[A-Za-z].*\) \{$',l):
            depth=0; j=i
            while j<len(lines):
                t=re.sub(r'"(\\.|[^"\\])*"','""',lines[j]); t=re.sub(r"'(\\.|[^'\\])'","''",t); depth+=t.count('{')-t.count('}')
                if depth==0: break
                j+=1
            n=j-i+1
            if n>80: print(f"{f}:{i+1}: {n} lines: {l.strip()[:70]}")
            i=j+1
        else: i+=1
